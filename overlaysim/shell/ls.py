"""``ls`` as GNU coreutils prints it to a pipe in the C locale (one name per line).

The long format is the one a reader compares with a real upper dir: column widths are
computed per listing, device files show ``major, minor`` in the size column (so a whiteout
reads ``c--------- 2 root root 0, 0``), ids print right-aligned when no name is known.
"""

from __future__ import annotations

import stat as statmod
from dataclasses import dataclass
from typing import Any

from overlaysim.shell.context import Ctx, quote, strerror
from overlaysim.shell.fmt import classify, dev_split, encode, filemode, full_iso, human, ls_date
from overlaysim.shell.options import getopt

_LONGS = {
    "all": ("a", False),
    "almost-all": ("A", False),
    "directory": ("d", False),
    "inode": ("i", False),
    "numeric-uid-gid": ("n", False),
    "recursive": ("R", False),
    "human-readable": ("h", False),
    "classify": ("F", False),
    "full-time": ("full-time", False),
    "reverse": ("r", False),
    "dereference": ("L", False),
    "dereference-command-line": ("H", False),
    "size": ("s", False),
    "color": ("color", None),
    "group-directories-first": ("gdf", False),
}


@dataclass
class Entry:
    name: str  # what is printed
    path: str  # what the os-like module is asked
    st: Any
    link: str | None = None  # symlink target text (long format)
    link_mode: int | None = None  # mode of what a symlink points to (``-F``)


@dataclass
class Conf:
    all: str | None
    long: bool
    dir_only: bool
    inode: bool
    numeric: bool
    recursive: bool
    human: bool
    classify: bool
    full_time: bool
    reverse: bool
    sort: str  # name, time, size, none
    deref: bool
    deref_cmdline: bool
    size: bool
    dirs_first: bool


class Lister:
    def __init__(self, ctx: Ctx, conf: Conf) -> None:
        self.ctx = ctx
        self.o = ctx.o
        self.c = conf
        self.status = 0
        self.first = True
        self.now = ctx.machine.clock()

    # -- entries ---------------------------------------------------------------------------
    def entry(self, name: str, path: str, st: Any) -> Entry:
        e = Entry(name, path, st)
        if statmod.S_ISLNK(st.st_mode):
            if self.c.long:
                try:
                    e.link = self.o.readlink(path)
                except OSError:
                    e.link = None
            if self.c.long and self.c.classify:
                try:
                    e.link_mode = self.o.stat(path).st_mode
                except OSError:
                    e.link_mode = None
        return e

    def sort(self, entries: list[Entry]) -> list[Entry]:
        if self.c.sort == "none":
            out = list(entries)
        elif self.c.sort == "time":
            out = sorted(entries, key=lambda e: (-_mtime(e.st), encode(e.name)))
        elif self.c.sort == "size":
            out = sorted(entries, key=lambda e: (-e.st.st_size, encode(e.name)))
        else:
            out = sorted(entries, key=lambda e: encode(e.name))
        if self.c.reverse and self.c.sort != "none":
            out.reverse()
        if self.c.dirs_first:
            out = [e for e in out if _is_dir(e)] + [e for e in out if not _is_dir(e)]
        return out

    # -- output ----------------------------------------------------------------------------
    def blocks(self, st: Any) -> str:
        b = int(getattr(st, "st_blocks", 0))
        return human(b * 512) if self.c.human else str(-(-b // 2))

    def owner(self, uid: int) -> str | None:
        return None if self.c.numeric else self.ctx.users.user(uid)

    def group(self, gid: int) -> str | None:
        return None if self.c.numeric else self.ctx.users.grp(gid)

    def print_entries(self, entries: list[Entry], total: bool,
                      sizing: list[Entry] | None = None) -> None:  # fmt: skip
        """Print a listing; column widths come from ``sizing`` (default: the entries)."""
        if total and (self.c.long or self.c.size):
            blocks = sum(int(getattr(e.st, "st_blocks", 0)) for e in entries)
            shown = human(blocks * 512) if self.c.human else str(-(-blocks // 2))
            self.ctx.write(f"total {shown}\n")
        if not entries:
            return
        sized = sizing or entries
        ino_w = max(len(str(e.st.st_ino)) for e in sized) if self.c.inode else 0
        blk_w = max(len(self.blocks(e.st)) for e in sized) if self.c.size else 0
        if not self.c.long:
            for e in entries:
                pre = f"{e.st.st_ino:>{ino_w}} " if self.c.inode else ""
                pre += f"{self.blocks(e.st):>{blk_w}} " if self.c.size else ""
                mark = classify(e.st.st_mode) if self.c.classify else ""
                self.ctx.write(f"{pre}{e.name}{mark}\n")
            return
        self.print_long(entries, ino_w, blk_w, sized)

    def print_long(self, entries: list[Entry], ino_w: int, blk_w: int, sized: list[Entry]) -> None:
        nl_w = max(len(str(e.st.st_nlink)) for e in sized)
        own_w = max(len(self.owner(e.st.st_uid) or str(e.st.st_uid)) for e in sized)
        grp_w = max(len(self.group(e.st.st_gid) or str(e.st.st_gid)) for e in sized)
        maj_w = min_w = 0
        size_w = 0
        for e in sized:
            if _is_dev(e.st.st_mode):
                ma, mi = dev_split(e.st.st_rdev)
                maj_w, min_w = max(maj_w, len(str(ma))), max(min_w, len(str(mi)))
                size_w = max(size_w, maj_w + 2 + min_w)
            else:
                size_w = max(size_w, len(self.size(e.st.st_size)))
        lines = []
        for e in entries:
            st = e.st
            parts = []
            if self.c.inode:
                parts.append(f"{st.st_ino:>{ino_w}} ")
            if self.c.size:
                parts.append(f"{self.blocks(st):>{blk_w}} ")
            parts.append(f"{filemode(st.st_mode)} {st.st_nlink:>{nl_w}} ")
            name = self.owner(st.st_uid)
            parts.append(f"{name:<{own_w}} " if name is not None else f"{st.st_uid:>{own_w}} ")
            grp = self.group(st.st_gid)
            parts.append(f"{grp:<{grp_w}} " if grp is not None else f"{st.st_gid:>{grp_w}} ")
            if _is_dev(st.st_mode):
                ma, mi = dev_split(st.st_rdev)
                blanks = size_w - (maj_w + 2 + min_w)
                parts.append(f"{'':{blanks}}{ma:>{maj_w}}, {mi:>{min_w}} ")
            else:
                parts.append(f"{self.size(st.st_size):>{size_w}} ")
            mtime = _mtime(st)
            parts.append(full_iso(mtime) if self.c.full_time else ls_date(mtime, self.now))
            parts.append(" " + e.name)
            if statmod.S_ISLNK(st.st_mode):
                if e.link is not None:
                    parts.append(" -> " + e.link)
                    if self.c.classify:
                        parts.append(classify(e.link_mode))
            elif self.c.classify:
                parts.append(classify(st.st_mode))
            lines.append("".join(parts) + "\n")
        self.ctx.write("".join(lines))

    def size(self, n: int) -> str:
        return human(n) if self.c.human else str(n)

    # -- directories ------------------------------------------------------------------------
    def list_dir(self, shown: str, path: str, header: bool, cmdline: bool) -> None:
        try:
            names = list(self.o.listdir(path))
        except OSError as e:
            self.ctx.error(f"cannot open directory {quote(shown)}: {strerror(e)}")
            self.status = max(self.status, 2 if cmdline else 1)
            return
        if not self.first:
            self.ctx.write("\n")
        self.first = False
        if header:
            self.ctx.write(f"{shown}:\n")
        if self.c.all == "a":
            names = [".", "..", *names]
        elif self.c.all != "A":
            names = [n for n in names if not n.startswith(".")]
        entries = []
        base = path.rstrip("/") + "/" if path != "/" else "/"
        for n in names:
            full = base + n
            try:
                st = self.o.stat(full) if self.c.deref else self.o.lstat(full)
            except OSError:
                try:
                    st = self.o.lstat(full)
                except OSError as e:
                    self.ctx.error(f"cannot access {quote(_join(shown, n))}: {strerror(e)}")
                    self.status = max(self.status, 1)
                    continue
            entries.append(self.entry(n, full, st))
        entries = self.sort(entries)
        self.print_entries(entries, total=True)
        if self.c.recursive:
            for ent in entries:
                if ent.name in (".", "..") or not statmod.S_ISDIR(ent.st.st_mode):
                    continue
                self.list_dir(_join(shown, ent.name), ent.path, True, False)


def ls(ctx: Ctx, args: list[str]) -> int:
    opts, operands = getopt(args, "aAdilnR1hFrtSUHLs", _LONGS)
    sort = "name"
    for key, _ in opts.items:
        if key == "t":
            sort = "time"
        elif key == "S":
            sort = "size"
        elif key == "U":
            sort = "none"
    conf = Conf(
        all=opts.last_of("a", "A"),
        long=opts.has("l") or opts.has("n") or opts.has("full-time"),
        dir_only=opts.has("d"),
        inode=opts.has("i"),
        numeric=opts.has("n"),
        recursive=opts.has("R") and not opts.has("d"),
        human=opts.has("h"),
        classify=opts.has("F"),
        full_time=opts.has("full-time"),
        reverse=opts.has("r"),
        sort=sort,
        deref=opts.has("L"),
        deref_cmdline=opts.has("H") or opts.has("L"),
        size=opts.has("s"),
        dirs_first=opts.has("gdf"),
    )
    lister = Lister(ctx, conf)
    if not operands:
        operands = ["."]
    files: list[Entry] = []
    dirs: list[Entry] = []
    o = ctx.o
    for arg in operands:
        path = ctx.abspath(arg)
        try:
            st = o.lstat(path)
        except OSError as e:
            ctx.error(f"cannot access {quote(arg)}: {strerror(e)}")
            lister.status = 2
            continue
        if statmod.S_ISLNK(st.st_mode):
            implicit = not (conf.long or conf.dir_only or conf.classify)
            if conf.deref_cmdline or implicit:
                try:
                    target = o.stat(path)
                except OSError as e:
                    if conf.deref_cmdline:
                        ctx.error(f"cannot access {quote(arg)}: {strerror(e)}")
                        lister.status = 2
                        continue
                else:
                    if conf.deref_cmdline or statmod.S_ISDIR(target.st_mode):
                        st = target
        ent = lister.entry(arg, path, st)
        if statmod.S_ISDIR(st.st_mode) and not conf.dir_only:
            dirs.append(ent)
        else:
            files.append(ent)
    if files:
        # GNU ls sizes the columns over every operand, directories included
        lister.print_entries(lister.sort(files), total=False, sizing=files + dirs)
        lister.first = False
    header = len(operands) > 1 or conf.recursive
    for d in lister.sort(dirs):
        lister.list_dir(d.name, d.path, header, True)
    return lister.status


def _join(base: str, name: str) -> str:
    return base + name if base.endswith("/") else f"{base}/{name}"


def _mtime(st: Any) -> int:
    value = getattr(st, "st_mtime_ns", None)
    return int(value) if value is not None else int(st.st_mtime * 1e9)


def _is_dev(mode: int) -> bool:
    return statmod.S_ISCHR(mode) or statmod.S_ISBLK(mode)


def _is_dir(e: Entry) -> bool:
    return statmod.S_ISDIR(e.st.st_mode)
