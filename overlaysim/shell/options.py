"""GNU getopt_long, small: clustered short options, permutation, ``--``, long-option prefixes.

Tools declare options the way C tools do (``"aAdn:"`` plus a long table) so that the
error texts (``invalid option -- 'z'``, ``unrecognized option '--x'``) match coreutils.
"""

from __future__ import annotations

from collections.abc import Mapping

from overlaysim.shell.context import UsageFailure


class Opts:
    """Parsed options: ``o.has("l")``, ``o.get("n")``, ``o.all("v")`` in command-line order."""

    def __init__(self, items: list[tuple[str, str | None]]) -> None:
        self.items = items

    def has(self, key: str) -> bool:
        return any(k == key for k, _ in self.items)

    def get(self, key: str, default: str | None = None) -> str | None:
        found = default
        for k, v in self.items:
            if k == key:
                found = v
        return found

    def all(self, key: str) -> list[str]:
        return [v for k, v in self.items if k == key and v is not None]

    def last_of(self, *keys: str) -> str | None:
        """Which of several mutually overriding options came last (``-a`` vs ``-A``)."""
        found = None
        for k, _ in self.items:
            if k in keys:
                found = k
        return found


def getopt(
    argv: list[str],
    short: str,
    longs: Mapping[str, tuple[str, bool | None]] | None = None,
    permute: bool = True,
) -> tuple[Opts, list[str]]:
    """Parse ``argv`` (without the program name).

    ``short`` is a getopt string (``"n:"``: ``-n`` takes a value); ``longs`` maps a long name to
    (key, takes_value); takes_value None means an optional ``=value``. Raises ``UsageFailure``
    with coreutils' wording.
    """
    longs = longs or {}
    takes: dict[str, bool] = {}
    i = 0
    while i < len(short):
        ch = short[i]
        arg = i + 1 < len(short) and short[i + 1] == ":"
        takes[ch] = arg
        i += 2 if arg else 1
    items: list[tuple[str, str | None]] = []
    operands: list[str] = []
    k = 0
    while k < len(argv):
        a = argv[k]
        k += 1
        if a == "--":
            operands.extend(argv[k:])
            break
        if a.startswith("--"):
            name, eq, value = a[2:].partition("=")
            key, wants = _long(name, longs, a)
            if wants is None:
                items.append((key, value if eq else None))
            elif wants:
                if not eq:
                    if k >= len(argv):
                        raise UsageFailure(f"option '--{name}' requires an argument")
                    value = argv[k]
                    k += 1
                items.append((key, value))
            else:
                if eq:
                    raise UsageFailure(f"option '--{name}' doesn't allow an argument")
                items.append((key, None))
            continue
        if a.startswith("-") and a != "-":
            j = 1
            while j < len(a):
                ch = a[j]
                if ch not in takes:
                    raise UsageFailure(f"invalid option -- '{ch}'")
                if takes[ch]:
                    rest = a[j + 1 :]
                    if not rest:
                        if k >= len(argv):
                            raise UsageFailure(f"option requires an argument -- '{ch}'")
                        rest = argv[k]
                        k += 1
                    items.append((ch, rest))
                    break
                items.append((ch, None))
                j += 1
            continue
        operands.append(a)
        if not permute:
            operands.extend(argv[k:])
            break
    return Opts(items), operands


def _long(
    name: str, longs: Mapping[str, tuple[str, bool | None]], arg: str
) -> tuple[str, bool | None]:
    if name in longs:
        return longs[name]
    matches = [n for n in longs if n.startswith(name)]
    distinct = {longs[n] for n in matches}
    if len(distinct) == 1:
        return longs[matches[0]]
    if not matches:
        raise UsageFailure(f"unrecognized option '{arg}'")
    shown = " ".join(f"'--{n}'" for n in matches)
    raise UsageFailure(f"option '{arg}' is ambiguous; possibilities: {shown}")
