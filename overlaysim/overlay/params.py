"""Overlay mount options of Linux 6.18: parsing, validation, and the mountinfo rendering.

Mirrors ``fs/overlayfs/params.c`` and the option checks of ``ovl_fill_super``: users compare
every errno and ``/proc/self/mountinfo`` line with a real kernel (see
``tests/overlay/test_params.py``). :mod:`overlaysim.overlay.layers` adds the checks that need
a filesystem (``parse_options``, ``validate_mount``, ``check_layers`` live there).
Errors are ``OSError(errno, "<kernel log line>")``; non-fatal kernel log lines go to ``notes``.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, cast

if TYPE_CHECKING:
    from overlaysim.overlay.layers import LayerRef, LayerResolver

MAX_STACK = 500  # OVL_MAX_STACK
MOUNT_DATA_MAX = 4095  # mount(2) copies one page and forces a NUL into its last byte
MAX_STACK_DEPTH = 2  # FILESYSTEM_MAX_STACK_DEPTH

# mount(2) flag bits that show up among the superblock options of mountinfo
MS_RDONLY, MS_SYNCHRONOUS, MS_MANDLOCK, MS_DIRSYNC, MS_LAZYTIME = 1, 16, 64, 128, 1 << 25

RedirectMode = Literal["follow", "nofollow", "on"]
XinoMode = Literal["off", "auto", "on"]
UuidMode = Literal["off", "null", "auto", "on"]
FsyncMode = Literal["auto", "strict", "volatile"]
VerityMode = Literal["off", "on", "require"]

# Defaults of this kernel (module parameters: redirect_dir=N, redirect_always_follow=Y,
# index=N, nfs_export=N, metacopy=N, xino_auto=N).
DEFAULT_REDIRECT: RedirectMode = "follow"
DEFAULT_XINO: XinoMode = "off"
DEFAULT_UUID: UuidMode = "auto"
DEFAULT_FSYNC: FsyncMode = "auto"

_ENUMS: dict[str, tuple[str, ...]] = {
    "redirect_dir": ("off", "follow", "nofollow", "on"), "index": ("on", "off"),
    "uuid": ("off", "null", "auto", "on"), "nfs_export": ("on", "off"),
    "xino": ("off", "auto", "on"), "metacopy": ("on", "off"),
    "verity": ("off", "on", "require"), "fsync": ("volatile", "auto", "strict"),
}  # fmt: skip
_STRINGS = {"lowerdir", "lowerdir+", "datadir+", "upperdir", "workdir"}
_FLAGS = {"default_permissions", "userxattr", "volatile", "override_creds"}
_NEGATABLE = {"override_creds"}  # fsparam_flag_no: "nooverride_creds" is accepted too
# VFS superblock flags taken from the data string before the filesystem sees it; the value
# after '=' (if any) is ignored ("ro=0" still means read-only).
_SB_SET = {"ro": MS_RDONLY, "sync": MS_SYNCHRONOUS, "mand": MS_MANDLOCK, "dirsync": MS_DIRSYNC,
           "lazytime": MS_LAZYTIME}  # fmt: skip
_SB_CLEAR = {"rw": MS_RDONLY, "async": MS_SYNCHRONOUS, "nomand": MS_MANDLOCK,
             "nolazytime": MS_LAZYTIME}  # fmt: skip
_SB_SHOW = ((MS_SYNCHRONOUS, "sync"), (MS_DIRSYNC, "dirsync"), (MS_MANDLOCK, "mand"),
            (MS_LAZYTIME, "lazytime"))  # fmt: skip
Pairs = Sequence[tuple[str, str | None]]
Data = str | tuple[tuple[str, str | None], ...]
_SHOW_ESCAPED = ", \t\n\\"  # seq_show_option escapes these in values (':' and '=' are not)


# Kernel log lines of the refusals (prefix "overlay:" from the fs_context logger,
# "overlayfs:" from pr_err), keyed for the checks below.
_MSG = {
    "colons": "overlayfs: only single ':' or double '::' sequences of unescaped colons in "
    "lowerdir mount option allowed.",
    "trailing": "overlayfs: unescaped trailing colons in lowerdir mount option.",
    "append": "overlayfs: cannot append lower layer",
    "too_many": f"overlayfs: too many lower directories, limit is {MAX_STACK}",
    "too_many+": f"overlay: too many lower directories, limit is {MAX_STACK}",
    "data_follow": "overlayfs: regular lower layers cannot follow data lower layers",
    "data_follow+": "overlay: regular lower layers cannot follow data layers",
    "after_lowerdir": "overlay: lowerdir+ and datadir+ cannot follow lowerdir",
    "empty": "overlayfs: empty lowerdir",
    "no_lower": "overlayfs: missing 'lowerdir'",
    "no_work": "overlayfs: missing 'workdir'",
    "same_mount": "overlayfs: workdir and upperdir must reside under the same mount",
    "subtrees": "overlayfs: workdir and upperdir must be separate subtrees",
    "incompat": "overlayfs: overlay with incompat feature 'volatile' cannot be mounted",
    "two_lowers": "overlayfs: at least 2 lowerdir are needed while upperdir nonexistent",
    "non_data": "overlayfs: at least one non-data lowerdir is required",
    "depth": "overlayfs: maximum fs stacking depth exceeded",
    "conflicting": "overlayfs: conflicting lowerdir path",
    "overlapping": "overlayfs: overlapping lowerdir path",
}


def _fail(code: int, message: str) -> OSError:
    return OSError(code, _MSG.get(message, message))


class LowerLayer(NamedTuple):
    """One lower layer: ``path`` as resolved, ``spelled`` as written (escapes kept)."""

    path: str
    is_data_only: bool
    spelled: str



@dataclass(frozen=True)
class OverlayParams:
    """The configuration of one overlay mount after the kernel's verification step.

    ``explicit`` names the options given in the data string (the kernel's ``ctx->set``
    plus the rest). ``notes`` are the kernel's informational log lines.
    """

    lowers: tuple[LowerLayer, ...] = ()
    lowerdir_all: str | None = None  # the raw ``lowerdir=`` value, shown as-is in mountinfo
    upper: str | None = None
    upper_spelled: str | None = None
    work: str | None = None
    work_spelled: str | None = None
    redirect_dir: RedirectMode = DEFAULT_REDIRECT
    index: bool = False
    metacopy: bool = False
    nfs_export: bool = False
    xino: XinoMode = DEFAULT_XINO
    uuid: UuidMode = DEFAULT_UUID
    userxattr: bool = False
    fsync: FsyncMode = DEFAULT_FSYNC
    verity: VerityMode = "off"
    default_permissions: bool = False
    override_creds: bool = True
    sb_flags: int = 0  # MS_* bits (from mount flags and from "ro", "sync"... in the data)
    explicit: frozenset[str] = frozenset()
    notes: tuple[str, ...] = ()
    data: Data = ""  # what the kernel parsed (a data string after the 4095-byte cut, or pairs)
    flags: int = 0  # the mount(2) flags given

    @property
    def has_upper(self) -> bool:
        return self.upper is not None

    @property
    def allow_offline_changes(self) -> bool:
        """ovl_allow_offline_changes(): none of the features that remember lower objects
        (index, metacopy, redirect_dir=on, xino=on), so lower layers may be edited offline."""
        return not (self.index or self.metacopy or self.redirect_dir == "on" or self.xino == "on")

    @property
    def volatile(self) -> bool:
        return self.fsync == "volatile"

    @property
    def read_only(self) -> bool:
        """No upper layer, or ``ro`` among the mount flags or options."""
        return self.upper is None or bool(self.sb_flags & MS_RDONLY)

    @property
    def lower_paths(self) -> tuple[str, ...]:
        return tuple(layer.path for layer in self.lowers)

    @property
    def xattr_prefix(self) -> str:
        """Where this mount keeps its private xattrs on the layers."""
        return "user.overlay." if self.userxattr else "trusted.overlay."

    def settle(
        self, *, same_fs: bool = True, numfs: int | None = None, upper_has_uuid: bool = False,
        upper_impure: bool = False,
    ) -> OverlayParams:  # fmt: skip
        """The settings ``ovl_fill_super`` ends with, given the state of the layers.

        ``upper_has_uuid``/``upper_impure`` describe the upper root's overlay xattrs before the
        mount: ``uuid=auto`` becomes ``on`` for a new overlay, stays ``auto`` when a uuid is
        stored, and falls back to ``null`` for an old (impure) one without uuid.
        """
        p = self
        if numfs is None:
            numfs = (1 if same_fs else 2) if p.has_upper else (2 if same_fs else 3)
        if p.uuid == "off" and numfs > 1:
            p = replace(p, uuid="null")
        if p.has_upper and p.uuid == "auto" and not upper_has_uuid:
            p = replace(p, uuid="null" if upper_impure else "on")
        if not p.has_upper and p.index:  # no index dir without an upper layer
            p = replace(p, index=False)
        if p.nfs_export and p.metacopy:
            p = replace(p, nfs_export=False)
        return p

    def mount_options(
        self, *, same_fs: bool = True, numfs: int | None = None, upper_has_uuid: bool = False,
        upper_impure: bool = False, read_only: bool | None = None,
    ) -> str:  # fmt: skip
        """The superblock options field of ``/proc/self/mountinfo`` for this mount.

        ``same_fs``: all layers on one filesystem (``xino`` is shown only otherwise).
        ``read_only`` overrides the ro/rw flag (e.g. a workdir that could not be created).
        """
        p = self.settle(
            same_fs=same_fs, numfs=numfs, upper_has_uuid=upper_has_uuid, upper_impure=upper_impure
        )
        ro = p.read_only if read_only is None else read_only
        out = ["ro" if ro else "rw"] + [name for bit, name in _SB_SHOW if p.sb_flags & bit]
        if p.lowerdir_all is not None:
            out.append("lowerdir=" + escape_option(p.lowerdir_all))
        else:
            out += [
                f"{'datadir+' if layer.is_data_only else 'lowerdir+'}={escape_option(layer.spelled)}"
                for layer in p.lowers
            ]
        if p.upper_spelled is not None:
            out.append("upperdir=" + escape_option(p.upper_spelled))
            out.append("workdir=" + escape_option(p.work_spelled or ""))
        shown = [  # ovl_show_options: only what differs from this kernel's defaults
            (p.default_permissions, "default_permissions"),
            (p.redirect_dir != DEFAULT_REDIRECT, f"redirect_dir={p.redirect_dir}"),
            (p.index, "index=on"),
            (p.uuid != DEFAULT_UUID, f"uuid={p.uuid}"),
            (p.nfs_export, "nfs_export=on"),
            (p.xino != DEFAULT_XINO and not same_fs, f"xino={p.xino}"),
            (p.metacopy, "metacopy=on"),
            (p.fsync != DEFAULT_FSYNC, f"fsync={p.fsync}"),
            (p.userxattr, "userxattr"),
            (p.verity != "off", f"verity={p.verity}"),
        ]
        return ",".join(out + [text for cond, text in shown if cond])



def escape_option(value: str) -> str:
    """Escape a layer path the way ``seq_show_option`` prints it (``\\054`` for ``,``...)."""
    return "".join(f"\\{ord(c):03o}" if c in _SHOW_ESCAPED else c for c in value)


def unescape(value: str) -> str:
    """Drop each backslash and keep the character after it (``ovl_unescape``)."""
    out: list[str] = []
    i = 0
    while i < len(value):
        if value[i] == "\\":
            i += 1
            if i == len(value):
                break
        out.append(value[i])
        i += 1
    return "".join(out)


def split_options(data: str) -> list[str]:
    """Split at commas that are not escaped by a backslash (``ovl_next_opt``)."""
    parts: list[str] = []
    start = i = 0
    while i < len(data):
        if data[i] == "\\":
            i += 2
            continue
        if data[i] == ",":
            parts.append(data[start:i])
            start = i + 1
        i += 1
    parts.append(data[start:])
    return parts


def split_lowerdirs(value: str) -> list[tuple[str, bool]]:
    """Split a ``lowerdir=`` value into (spelled layer, follows ``::``) pairs.

    Escapes stay in place. Three colons in a row, or colons at the end, are refused with the
    kernel's messages. A backslash at the very end keeps a pending colon run "trailing", as
    the kernel's scanner does.
    """
    layers: list[tuple[str, bool]] = []
    current: list[str] = []
    colons = 0
    after_double = False
    i = 0
    while True:
        c = value[i] if i < len(value) else ""
        if c == "\\":
            current.append(c)
            i += 1
            c = value[i] if i < len(value) else ""
        elif c == ":":
            colons += 1
            nxt = value[i + 1] if i + 1 < len(value) else ""
            if colons == 2 and nxt == ":":
                raise _fail(errno.EINVAL, "colons")
            if nxt != ":":
                layers.append(("".join(current), after_double))
                current = []
                after_double = colons == 2
            i += 1
            continue
        if not c:
            if colons:
                raise _fail(errno.EINVAL, "trailing")
            layers.append(("".join(current), after_double))
            return layers
        current.append(c)
        colons = 0
        i += 1


class _Ctx:
    """The kernel's ``ovl_fs_context`` + ``ovl_config`` while options are parsed."""

    def __init__(self, resolver: LayerResolver | None) -> None:
        self.resolver = resolver
        self.lowers: list[LowerLayer] = []
        self.lower_refs: list[LayerRef | None] = []
        self.nr_data = 0
        self.lowerdir_all: str | None = None
        self.upper: tuple[str, str, LayerRef | None] | None = None
        self.work: tuple[str, str, LayerRef | None] | None = None
        self.cfg: dict[str, object] = {
            "redirect_dir": DEFAULT_REDIRECT, "index": False, "metacopy": False,
            "nfs_export": False, "xino": DEFAULT_XINO, "uuid": DEFAULT_UUID,
            "userxattr": False, "fsync": DEFAULT_FSYNC, "verity": "off",
            "default_permissions": False, "override_creds": True,
        }  # fmt: skip
        self.explicit: set[str] = set()
        self.sb_flags = 0
        self.notes: list[str] = []

    # -- paths --------------------------------------------------------------------------------
    def resolve(self, spelled: str, path: str, *, upper: bool) -> LayerRef | None:
        """``ovl_mount_dir_noesc`` + the directory checks of ``ovl_mount_dir_check``."""
        if not path:
            raise _fail(errno.EINVAL, "empty")
        if self.resolver is None:
            return None
        try:
            ref = self.resolver.resolve(path)
        except OSError as e:
            code = e.errno or errno.EINVAL
            raise OSError(code, f"overlayfs: failed to resolve '{path}': {-code}", path) from None
        if not ref.is_dir:
            raise OSError(errno.EINVAL, f"overlay: {spelled} is not a directory", path)
        if upper and ref.stack_depth > 0:
            raise OSError(errno.EINVAL, f"overlay: filesystem on {spelled} not supported as upperdir", path)  # fmt: skip
        if upper and ref.read_only_mount:
            raise OSError(errno.EINVAL, f"overlay: filesystem on {spelled} is read-only", path)
        return ref

    def reset_lowers(self) -> None:
        self.lowers, self.lower_refs, self.nr_data, self.lowerdir_all = [], [], 0, None

    def parse_lowerdir(self, value: str) -> None:
        self.reset_lowers()
        if not value:
            return
        if value.startswith(":"):
            raise _fail(errno.EINVAL, "append")
        self.lowerdir_all = value
        layers = split_lowerdirs(value)
        if len(layers) > MAX_STACK:
            raise _fail(errno.EINVAL, "too_many")
        for spelled, data_only in layers:
            # the check runs on the layer about to be resolved, after the previous ones were
            if self.lowers and not data_only and self.nr_data:
                raise _fail(errno.EINVAL, "data_follow")
            path = unescape(spelled)
            ref = self.resolve(spelled, path, upper=False)
            self.lowers.append(LowerLayer(path, data_only, spelled))
            self.lower_refs.append(ref)
            self.nr_data += data_only

    def parse_layer(self, key: str, value: str) -> None:
        """``lowerdir+``, ``datadir+``, ``upperdir``, ``workdir`` (``ovl_parse_layer``)."""
        if key in ("upperdir", "workdir"):
            path = unescape(value)
            ref = self.resolve(value, path, upper=True)
            if key == "upperdir":
                self.upper = (path, value, ref)
            else:
                self.work = (path, value, ref)
            return
        ref = self.resolve(value, value, upper=False)
        if self.lowerdir_all is not None:
            raise _fail(errno.EINVAL, "after_lowerdir")
        if self.nr_data and key == "lowerdir+":
            raise _fail(errno.EINVAL, "data_follow+")
        if len(self.lowers) == MAX_STACK:
            raise _fail(errno.EINVAL, "too_many+")
        data_only = key == "datadir+"
        self.lowers.append(LowerLayer(value, data_only, value))
        self.lower_refs.append(ref)
        self.nr_data += data_only

    # -- one option ---------------------------------------------------------------------------
    def parse_param(self, key: str, value: str | None) -> None:
        if key in _SB_SET:
            self.sb_flags |= _SB_SET[key]
            return
        if key in _SB_CLEAR:
            self.sb_flags &= ~_SB_CLEAR[key]
            return
        negated = key.startswith("no") and key[2:] in _NEGATABLE
        name = key[2:] if negated else key
        if name in _FLAGS:
            if value is not None:
                raise _fail(errno.EINVAL, f"overlay: Unexpected value for '{key}'")
            self.explicit.add(name)
            if name == "volatile":
                self.cfg["fsync"] = "volatile"
            else:
                self.cfg[name] = not negated
            return
        if name in _STRINGS:
            if value is None or (not value and name != "lowerdir"):
                raise _fail(errno.EINVAL, f"overlay: Bad value for '{key}'")
            self.explicit.add(name)
            if name == "lowerdir":
                self.parse_lowerdir(value)
            else:
                self.parse_layer(name, value)
            return
        if name in _ENUMS:
            if value is None or value not in _ENUMS[name]:
                raise _fail(errno.EINVAL, f"overlay: Bad value for '{key}'")
            self.explicit.add(name)
            if name == "redirect_dir":
                # "off" means "follow" when redirect_always_follow=Y (this kernel)
                self.cfg[name] = "follow" if value == "off" else value
            elif name in ("index", "nfs_export", "metacopy"):
                self.cfg[name] = value == "on"
            else:
                self.cfg[name] = value
            return
        if key == "source":
            # mount(2) already set the source from its first argument
            raise _fail(
                errno.EINVAL, "Multiple sources" if value is not None else "Non-string source"
            )
        raise _fail(errno.EINVAL, f"overlay: Unknown parameter '{key}'")

    # -- ovl_fs_params_verify -----------------------------------------------------------------
    def verify(self) -> None:
        """``ovl_fs_params_verify``: implied settings; explicit conflicts are EINVAL."""
        cfg, ex, note = self.cfg, self.explicit, self.notes.append
        set_index = "index" in ex

        def conflict(*pair: str) -> OSError:
            return _fail(errno.EINVAL, "overlayfs: conflicting options: " + ",".join(pair))

        if self.upper is None:
            if self.work is not None:
                note(f'overlayfs: option "workdir={self.work[1]}" is useless in a non-upper mount, ignore')  # fmt: skip
                self.work = None
            if cfg["index"] and set_index:
                note('overlayfs: option "index=on" is useless in a non-upper mount, ignore')
                set_index = False
            cfg["index"] = False
            if cfg["fsync"] == "volatile":
                note('overlayfs: option "volatile" is meaningless in a non-upper mount, ignoring it.')  # fmt: skip
                cfg["fsync"] = DEFAULT_FSYNC
            if cfg["uuid"] == "on":
                note('overlayfs: option "uuid=on" requires an upper fs, falling back to uuid=null.')  # fmt: skip
                cfg["uuid"] = "null"
            if cfg["redirect_dir"] == "follow":
                cfg["redirect_dir"] = "on"
        redirect = f"redirect_dir={cfg['redirect_dir']}"
        if cfg["metacopy"] and cfg["redirect_dir"] != "on":
            if "metacopy" in ex and "redirect_dir" in ex:
                raise conflict("metacopy=on", redirect)
            if "redirect_dir" in ex:
                note(f"overlayfs: disabling metacopy due to {redirect}")
                cfg["metacopy"] = False
            else:
                cfg["redirect_dir"] = "on"
        if cfg["nfs_export"] and not cfg["index"]:
            if self.upper is None and cfg["redirect_dir"] != "nofollow":
                note('overlayfs: NFS export requires "redirect_dir=nofollow" on non-upper mount, falling back to nfs_export=off.')  # fmt: skip
                cfg["nfs_export"] = False
            elif "nfs_export" in ex and set_index:
                raise conflict("nfs_export=on", "index=off")
            elif set_index:
                note("overlayfs: disabling nfs_export due to index=off")
                cfg["nfs_export"] = False
            else:
                cfg["index"] = True
        if cfg["nfs_export"] and cfg["metacopy"]:
            if "nfs_export" in ex and "metacopy" in ex:
                raise conflict("nfs_export=on", "metacopy=on")
            off = "nfs_export" if "metacopy" in ex else "metacopy"
            note(f"overlayfs: disabling {off} due to {'metacopy' if off == 'nfs_export' else 'nfs_export'}=on")  # fmt: skip
            cfg[off] = False
        if cfg["userxattr"]:
            if "redirect_dir" in ex and cfg["redirect_dir"] != "nofollow":
                raise conflict("userxattr", f"redirect_dir={cfg['redirect_dir']}")
            if cfg["metacopy"] and "metacopy" in ex:
                raise conflict("userxattr", "metacopy=on")
            cfg["redirect_dir"], cfg["metacopy"] = "nofollow", False

    def params(self, data: Data, flags: int) -> OverlayParams:
        up, work = self.upper or (None, None, None), self.work or (None, None, None)
        return OverlayParams(
            lowers=tuple(self.lowers), lowerdir_all=self.lowerdir_all, upper=up[0],
            upper_spelled=up[1], work=work[0], work_spelled=work[1], sb_flags=self.sb_flags,
            explicit=frozenset(self.explicit), notes=tuple(self.notes), data=data, flags=flags,
            **cast("dict[str, Any]", self.cfg),
        )  # fmt: skip


def _prepare(data: str | bytes | Pairs) -> Data:
    """What ``mount(2)`` hands the filesystem: at most 4095 bytes, up to the first NUL."""
    if isinstance(data, str | bytes):
        return os.fsdecode(os.fsencode(data)[:MOUNT_DATA_MAX].split(b"\0", 1)[0])
    return tuple(data)


def _parse(data: Data, flags: int, resolver: LayerResolver | None) -> _Ctx:
    ctx = _Ctx(resolver)
    ctx.sb_flags = flags & (MS_RDONLY | MS_SYNCHRONOUS | MS_MANDLOCK | MS_DIRSYNC | MS_LAZYTIME)
    pairs: list[tuple[str, str | None]] = []
    if isinstance(data, str):
        for option in split_options(data):
            key, eq, text = option.partition("=")
            if option and not (eq and not key):  # vfs_parse_monolithic_sep skips "" and "=x"
                pairs.append((key, text if eq else None))
    else:  # fsconfig: the source is one more parameter
        pairs = [pair for pair in data if pair[0] != "source"]
    for key, value in pairs:
        ctx.parse_param(key, value)
    ctx.verify()
    return ctx
