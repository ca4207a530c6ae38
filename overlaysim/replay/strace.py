"""Streaming conversion of ``strace`` text logs into overlaysim-trace ops (``format.py``).

Why a parser of our own: strace writes for people. -f/-ff/-y/-yy/-t/-T/-x/-r/-i/-n change
how a line looks, a call is split over two lines when processes interleave, strings are
C-escaped and cut at -s bytes. Each line is pre-split with one regex; only the calls that
become ops get their arguments decoded (``strace_calls``, ``strace_args``), which keeps >= 100k lines/s. A
line that cannot be read is counted in :attr:`StraceParser.skipped`, never raised.
"""

from __future__ import annotations

import gzip
import heapq
import lzma
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

from overlaysim.errors import TraceError
from overlaysim.replay import strace_args as A
from overlaysim.replay.format import Op
from overlaysim.replay.strace_calls import CONVERTERS, NOT_FILE, UNSUPPORTED, Conv

_MAX_LINE = 16 << 20  # longer lines are skipped whole ("line too long")
_MAX_PENDING = 65536  # unfinished calls remembered at once
_MAX_REASONS = 1000  # distinct keys of StraceParser.skipped
_UNFINISHED = "<unfinished ...>"
# [pid  12] / 12 (-f -o) / [pid 12<comm>] (-Y); then -t/-tt/-ttt/-r; then -n / -i brackets.
_HEAD = re.compile(
    r"(?:\[pid +(\d+)(?:<[^>]{0,64}>)?(?: \(in \d+\))?\] |(\d+)(?:<[^>]{0,64}>)? +)? *"
    r"(?:(\d+:\d\d:\d\d(?:\.\d+)?|\d+\.\d+) +)?(?:\[[ 0-9a-fA-F?]{1,20}\] +){0,2}"
)
# What follows ") = ": value, -y path of a returned fd, errno, explanation, -T time.
_RET = re.compile(
    r"(-?\d+|0x[0-9a-fA-F]+|\?)(?:<[^<>]*(?:<[^<>]*>[^<>]*)*>)?(?: ([A-Z][A-Z0-9_]*))?"
    r"(?: \(.*\))?(?: <unavailable>)?(?: <\d+(?:\.\d+)?>)? *\Z"
)
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,40}\Z")
_ATTACHED = re.compile(r"strace: Process (\d+) attached")
_EXITS = frozenset({"exit", "exit_group"})
_EOL = ("\n", "\r")


class StraceParser:
    """Turns strace lines into ops; :attr:`skipped` counts what was left out, and why.

    ``default_pid`` is the pid of lines without a pid prefix (strace without -f, or before
    the second process appears on stderr); once the log shows that process's real pid, the
    real pid's lines keep ``default_pid`` so that one process stays one process.
    """

    def __init__(self, source: str = "trace", default_pid: int = 0) -> None:
        self.source = source
        self.default_pid = default_pid
        self.skipped: Counter[str] = Counter()
        self.lines = 0
        self._pending: dict[int, tuple[str, str, int, float | None]] = {}
        self._exited: dict[int, None] = {}
        self._extra: list[Op] = []
        self._unprefixed = False
        self._alias: int | None = None
        self._children: set[int] = set()
        self._glued: int | None = None
        self._day = 0
        self._clock = 0.0
        self._hms = ""
        self._base = 0

    # --- driving --------------------------------------------------------------------------
    def parse(self, lines: Iterable[str]) -> Iterator[Op]:
        """Ops in log order; only unfinished calls and per-pid state are kept in memory."""
        line = self._line
        extra = self._extra
        for text in lines:
            self.lines += 1
            try:
                op = line(text, self.lines, None)
            except Exception:  # a decoder bug must not stop a replay: count the line instead
                self.skipped["unparsable line"] += 1
                op = None
            if extra:
                yield from extra
                extra.clear()
            if op is not None:
                yield op
        yield from self._finish()

    def _finish(self) -> Iterator[Op]:
        for pid in list(self._pending):
            self._abandon(pid)
        yield from self._extra
        self._extra.clear()

    def _merged(self, paths: Sequence[str], pids: list[int],
                firsts: list[float | None]) -> Iterator[Op]:  # fmt: skip
        """-ff files merged by timestamp; a file is opened only when its first line is due."""
        starts = [f for f in firsts if f is not None]
        base = min(starts) if starts else 0.0
        heap: list[tuple[float, int, int, str]] = [
            (f, i, 0, "") for i, f in enumerate(firsts) if f is not None]  # fmt: skip
        heapq.heapify(heap)
        its: dict[int, Iterator[tuple[float, int, str]]] = {}
        extra = self._extra
        while heap:
            _ts, idx, lineno, text = heap[0]
            if lineno:
                self.lines += 1
                op = self._feed(text, lineno, pids[idx])
                if extra:
                    yield from extra
                    extra.clear()
                if op is not None:
                    yield op
                it = its[idx]
            else:
                first = firsts[idx] or 0.0
                day = 86400.0 if first < base - 43200 else 0.0  # started after midnight
                it = its[idx] = _stamped(paths[idx], first, day)
            nxt = next(it, None)
            if nxt is None:
                heapq.heappop(heap)
                its.pop(idx, None)
            else:
                heapq.heapreplace(heap, (nxt[0], idx, nxt[1], nxt[2]))
        yield from self._finish()

    # --- one line ---------------------------------------------------------------------------
    def _feed(self, text: str, lineno: int, forced: int | None) -> Op | None:
        try:
            return self._line(text, lineno, forced)
        except Exception:  # a decoder bug must not stop a replay: count the line instead
            self.skipped["unparsable line"] += 1
            return None

    def _line(self, text: str, lineno: int, forced: int | None) -> Op | None:
        if len(text) > _MAX_LINE or text is _OVERLONG:
            self.skipped["line too long"] += 1
            return None
        if text[-1:] in _EOL:
            text = text.rstrip("\r\n")
        m = _HEAD.match(text)
        assert m is not None  # every part is optional
        p1, p2, stamp = m.groups()
        pos = m.end()
        if forced is not None:
            pid = forced
        elif p1 is not None or p2 is not None:
            pid = int(p1 if p1 is not None else p2)
            if self._unprefixed:
                pid = self._real_pid(pid)
        else:
            pid = self.default_pid
            if not self._unprefixed:
                self._unprefixed = True
        ts = self._stamp(stamp) if stamp is not None else None
        c = text[pos : pos + 1]
        if "a" <= c <= "z" or c == "_":
            paren = text.find("(", pos)
            if paren > 0:
                name = text[pos:paren]
                conv = CONVERTERS.get(name)
                if conv is not None:
                    if text.endswith(_UNFINISHED):
                        self._unfinished(text, paren, name, pid, lineno, ts)
                        return None
                    split = _split_ret(text, paren + 1)
                    if split is None:
                        return self._odd(text, paren, pid, lineno, ts)
                    op = self._convert(name, conv, text[paren + 1 : split[0]], split[1], pid,
                                       lineno, ts)  # fmt: skip
                    if type(op) is str:
                        self._count(op)
                        return None
                    return op  # type: ignore[return-value]
                if _NAME.match(name):
                    return self._other_call(text, paren, name, pid, lineno, ts)
        elif c == "<" and text.startswith("<... ", pos):
            return self._resumed(text, pos, pid)
        elif c == "+" and text.startswith("+++ ", pos):
            return self._exit_line(text, pos, pid, lineno, ts)
        elif c == "-" and text.startswith("--- ", pos):
            self.skipped["signal"] += 1
            return None
        return self._odd(text, pos, pid, lineno, ts)

    def _real_pid(self, pid: int) -> int:
        """Prefixed pid -> the pid to report, once unprefixed lines were seen (stderr -f)."""
        alias = self._alias
        if alias is None:
            if pid in self._children:
                return pid
            self._alias = alias = pid
            self._children = set()
        return self.default_pid if pid == alias else pid

    def _stamp(self, s: str) -> float | None:
        if s[2:3] == ":":
            hms = s[:8]
            if hms != self._hms:
                base = int(s[:2]) * 3600 + int(s[3:5]) * 60 + int(s[6:8]) + self._day
                if base < self._clock - 43200:  # -t/-tt wrapped past midnight
                    self._day += 86400
                    base += 86400
                self._hms, self._base = hms, base
            v = self._base + (float(s[8:]) if len(s) > 8 else 0.0)
            self._clock = v
            return v
        if ":" in s:
            return None
        v = float(s)
        return v if v >= 1e8 else None  # smaller: -r deltas, not a clock

    def _unfinished(self, text: str, paren: int, name: str, pid: int, lineno: int,
                    ts: float | None) -> None:  # fmt: skip
        partial = text[paren + 1 : -len(_UNFINISHED)]
        self._remember(pid, name, partial[:-1] if partial.endswith(" ") else partial, lineno, ts)

    def _remember(self, pid: int, name: str, partial: str, lineno: int,
                  ts: float | None) -> None:  # fmt: skip
        if pid in self._pending:
            self._abandon(pid)
        elif len(self._pending) >= _MAX_PENDING:
            self._abandon(next(iter(self._pending)))
        self._pending[pid] = (name, partial, lineno, ts)

    def _resumed(self, text: str, pos: int, pid: int) -> Op | None:
        k = text.find(" resumed>", pos)
        if k < 0:
            self.skipped["unparsable line"] += 1
            return None
        name = text[pos + 5 : k]
        conv = CONVERTERS.get(name)
        if conv is None:
            return None  # counted with its first half
        p = self._pending.pop(pid, None)
        if p is None or p[0] != name:
            if p is not None:
                self._pending[pid] = p
                self._abandon(pid)
            self.skipped["resumed without its start"] += 1
            return None
        start = k + 9
        if text.startswith(" " + _UNFINISHED, start):  # the process died inside the call
            self._pending[pid] = p
            self._abandon(pid)
            return None
        split = _split_ret(text, start)
        if split is None:
            self.skipped["unparsable line"] += 1
            return None
        end, ret_m = split
        return self._emit(name, conv, p[1] + text[start:end], ret_m, pid, p[2], p[3])

    def _emit(self, name: str, conv: Conv, args: str, ret_m: re.Match[str] | None, pid: int,
              lineno: int, ts: float | None) -> Op | None:  # fmt: skip
        op = self._convert(name, conv, args, ret_m, pid, lineno, ts)
        if isinstance(op, str):
            self._count(op)
            return None
        return op

    def _count(self, reason: str) -> None:
        """Count a skip; reasons that quote the log are capped so hostile input cannot grow
        the counter without bound."""
        if reason not in self.skipped and len(self.skipped) >= _MAX_REASONS:
            reason = "other (too many distinct reasons)"
        self.skipped[reason] += 1

    def _convert(self, name: str, conv: Conv, args: str, ret_m: re.Match[str] | None, pid: int,
                 lineno: int, ts: float | None) -> Op | str:  # fmt: skip
        """The op of one whole call, or the reason it has none."""
        ret: int | None = None
        err: str | None = None
        if ret_m is not None:
            value, err = ret_m.group(1, 2)
            if value == "?":
                if err is not None and err.startswith("ERESTART"):
                    return "restarted/interrupted"
                err = None
            elif value[1:2] != "x":
                ret = A.number(value)
        try:
            op = conv(A.split_args(args), ret, err)
        except A.Skip as e:
            return str(e)
        except Exception:
            return f"unparsable arguments {name}"
        op["pid"] = pid
        op["line"] = lineno
        op["call"] = name
        if ts is not None:
            op["ts"] = ts
        if ret is not None and "ret" not in op:
            op["ret"] = ret
        if err is not None:
            op["err"] = err
        if self._unprefixed and self._alias is None and op["op"] == "fork":
            self._child(op.get("child"))
        return op

    def _abandon(self, pid: int) -> None:
        """An unfinished call whose end never came: an op with ``ret`` null when its
        arguments are all known (the call may have happened), else a counted skip."""
        p = self._pending.pop(pid, None)
        if p is None:
            return
        name, partial, lineno, ts = p
        op = self._convert(name, CONVERTERS[name], partial, None, pid, lineno, ts)
        if isinstance(op, str):
            self.skipped["unfinished (never resumed)"] += 1
        else:
            self._extra.append(op)

    def _child(self, child: Any) -> None:
        if isinstance(child, int) and len(self._children) < _MAX_PENDING:
            self._children.add(child)

    def _exit_line(self, text: str, pos: int, pid: int, lineno: int,
                   ts: float | None) -> Op | None:  # fmt: skip
        self._abandon(pid)
        body = text[pos + 4 :]
        if body.startswith("exited with "):
            word = body[12:].split(" ", 1)[0]
            status: int | None = int(word) if word.isdigit() else None
            how = "exited"
        elif body.startswith("killed by "):
            status, how = None, "killed"
        else:
            self.skipped["superseded by execve" if "superseded" in body else "unparsable line"] += 1
            return None
        if self._exited.pop(pid, 0) is None:
            self.skipped["exit (already recorded at exit_group)"] += 1
            return None
        return self._exit_op(pid, lineno, ts, how, status)

    def _exit_op(self, pid: int, lineno: int, ts: float | None, call: str,
                 status: int | None) -> Op:  # fmt: skip
        op: Op = {"op": "exit", "pid": pid, "line": lineno, "call": call, "status": status}
        if ts is not None:
            op["ts"] = ts
        return op

    def _other_call(self, text: str, paren: int, name: str, pid: int, lineno: int,
                    ts: float | None) -> Op | None:  # fmt: skip
        if name in _EXITS:
            word = A.split_args(text[paren + 1 :].split(")", 1)[0].split(" <", 1)[0])[0]
            try:
                status: int | None = A.number(word)
            except ValueError:
                status = None
            if len(self._exited) >= _MAX_PENDING:
                del self._exited[next(iter(self._exited))]
            self._exited[pid] = None
            return self._exit_op(pid, lineno, ts, name, status)
        if name == "restart_syscall":
            reason = "restarted/interrupted"
        elif name in NOT_FILE:
            reason = f"not a file call {name}"
        elif name in UNSUPPORTED:
            reason = f"unsupported file call {name}"
        else:
            reason = f"unknown syscall {name}"
        self._count(reason)
        return None

    def _odd(self, text: str, pos: int, pid: int, lineno: int, ts: float | None) -> Op | None:
        """Lines that are not a call: strace's own messages, dumps, blanks, garbage."""
        if self._glued == pid and pid in self._pending:  # the rest of a line cut by a message
            self._glued = None
            if text[pos:].strip() == _UNFINISHED:
                self.skipped["strace message"] += 1
                return None
            split = _split_ret(text, pos)
            if split is not None:
                name, partial, first, first_ts = self._pending.pop(pid)
                return self._emit(name, CONVERTERS[name], partial + text[pos : split[0]],
                                  split[1], pid, first, first_ts)  # fmt: skip
        k = text.find("strace: ")
        if k >= 0:
            m = _ATTACHED.match(text, k)
            if m is not None and self._unprefixed and self._alias is None:
                self._child(int(m.group(1)))
            head = _HEAD.match(text)
            start = head.end() if head else 0
            paren = text.find("(", start, k)
            if k > start and paren > 0:  # "clone(...|SIGCHLDstrace: Process 9 attached"
                name = text[start:paren]
                if name in CONVERTERS:
                    self._remember(pid, name, text[paren + 1 : k], lineno, ts)
                    self._glued = pid
            self.skipped["strace message"] += 1
        elif not text.strip():
            self.skipped["blank line"] += 1
        elif text[pos : pos + 1] == "|" or text.lstrip().startswith("|"):
            self.skipped["i/o dump"] += 1
        else:
            self.skipped["unparsable line"] += 1
        return None


def _split_ret(text: str, lo: int) -> tuple[int, re.Match[str]] | None:
    """(index of the ``)`` closing the arguments, return-value match) or None.

    The last ``) = `` is the return unless it is inside a -y path, which strace does not
    escape; such candidates fail the strict return-value pattern and the search goes left.
    """
    end = len(text)
    for _ in range(8):
        eq = text.rfind(" = ", lo, end)
        if eq < 0 or len(text) - eq > 70000:
            return None
        j = eq
        if text[j - 1] == " ":
            j = len(text[:eq].rstrip(" "))
        if j - 1 >= lo and text[j - 1] == ")":
            m = _RET.match(text, eq + 3)
            if m is not None:
                return j - 1, m
        end = eq
    return None


# --- files ------------------------------------------------------------------------------------
#: Stands for a line longer than ``_MAX_LINE`` that :func:`open_trace_text` did not keep.
_OVERLONG = "\x00<line longer than 16 MiB, not read>\x00"
_CHUNK = 1 << 20


class _Reader(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...
    def close(self) -> None: ...


def _open_binary(path: str) -> _Reader:
    f = open(path, "rb")  # noqa: SIM115 - handed to the caller, closed by _read_lines
    magic = f.read(6)
    f.seek(0)
    if magic.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=f, mode="rb")
    if magic.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(f, "rb")
    if magic.startswith(b"\x28\xb5\x2f\xfd"):
        import zstandard

        dctx = zstandard.ZstdDecompressor()
        reader: _Reader = dctx.stream_reader(f, read_across_frames=True)
        return reader
    return f


def open_trace_text(path: str) -> Iterator[str]:
    """The lines of a log (plain, .gz, .xz or .zst, told by content) as latin-1 text, so
    that any byte sequence reads and maps back to its bytes; no line is held beyond 16 MiB."""
    raw = _open_binary(path)
    return _read_lines(raw, path)


def _read_lines(raw: _Reader, path: str) -> Iterator[str]:
    pieces: list[str] = []
    held = 0
    dropping = False
    try:
        while True:
            try:
                chunk = raw.read(_CHUNK)
            except (OSError, EOFError, lzma.LZMAError) as e:
                raise TraceError(f"{path}: corrupt or truncated compressed data ({e})") from None
            except Exception as e:  # zstandard.ZstdError
                raise TraceError(f"{path}: corrupt compressed data ({e})") from None
            if not chunk:
                break
            parts = chunk.decode("latin-1").split("\n")
            last = parts.pop()
            for part in parts:
                if dropping:
                    dropping = False
                    continue
                if pieces:
                    pieces.append(part)
                    part = "".join(pieces)
                    pieces.clear()
                    held = 0
                yield part
            if not dropping:
                pieces.append(last)
                held += len(last)
                if held > _MAX_LINE:
                    pieces.clear()
                    held = 0
                    dropping = True
                    yield _OVERLONG
    finally:
        raw.close()
    if pieces and held:
        yield "".join(pieces)


def _stamped(path: str, first: float, day: float) -> Iterator[tuple[float, int, str]]:
    """(clock, line number, text) of a -ff file; lines without a stamp keep the last one."""
    last = first + day
    clock = first
    for n, text in enumerate(open_trace_text(path), 1):
        m = _HEAD.match(text)
        stamp = m.group(3) if m is not None else None
        if stamp is not None:
            v = _clock_of(stamp)
            if v is not None:
                if v < clock - 43200:
                    day += 86400
                clock = v
                last = v + day
        yield last, n, text


def _clock_of(stamp: str) -> float | None:
    if ":" in stamp:
        h, m, sec = stamp.split(":")
        return int(h) * 3600 + int(m) * 60 + float(sec)
    v = float(stamp)
    return v if v >= 1e8 else None


def _first_stamp(path: str) -> float | None:
    """The clock of a -ff file's first line; None for an empty file."""
    for text in open_trace_text(path):
        if not text.strip():
            continue
        m = _HEAD.match(text)
        stamp = m.group(3) if m is not None else None
        v = _clock_of(stamp) if stamp is not None else None
        if v is None:
            raise TraceError(
                f"{path}: no timestamp at the start of the line; per-pid files need "
                "-t/-tt/-ttt timestamps to be merged (record with strace -ff -tt -o PREFIX)")
        return v
    return None


def _pid_of(path: str) -> int:
    suffix = path.rsplit(".", 1)[-1] if "." in os.path.basename(path) else ""
    if not suffix.isdigit():
        raise TraceError(f"{path}: not a per-pid file of strace -ff -o PREFIX (PREFIX.<pid>)")
    return int(suffix)


def parse_strace_files(paths: Sequence[str], default_pid: int = 0
                       ) -> tuple[StraceParser, Iterator[Op]]:  # fmt: skip
    """The ops of ``strace -ff -o PREFIX``'s files (pid from each name), merged by time."""
    pids = [_pid_of(p) for p in paths]
    firsts = [_first_stamp(p) for p in paths]
    parser = StraceParser(paths[0] if paths else "trace", default_pid)
    return parser, parser._merged(list(paths), pids, firsts)


class StraceTrace:
    """What :func:`parse_strace` returns: iterate for the ops; ``skipped`` and ``lines``
    are the parser's counts so far."""

    def __init__(self, parser: StraceParser, lines: Iterable[str]) -> None:
        self.parser = parser
        self._ops = parser.parse(lines)

    def __iter__(self) -> Iterator[Op]:
        return self._ops

    @property
    def skipped(self) -> Counter[str]:
        return self.parser.skipped

    @property
    def lines(self) -> int:
        return self.parser.lines


def parse_strace(lines: Iterable[str], source: str = "trace", default_pid: int = 0) -> StraceTrace:
    """Convenience: ``for op in parse_strace(open_trace_text(path)): ...``."""
    return StraceTrace(StraceParser(source, default_pid), lines)
