"""Re-record the replay's real-workload cases: ``python -m tests.replay.record_cases [NAME...]``.

Needs root (mount(2) of overlay, char 0/0 whiteouts, trusted.* xattrs) and ``strace``. For
each case of ``cases.py``: build its lowers and inputs under ``REC_ROOT/<name>/``, mount a
real overlay at ``REC_ROOT/<name>/merged``, run the workload under ``strace`` with the case's
flags, unmount, and store in ``cases/<name>/``: the log(s) (gzipped past 100 KB),
``case.json`` (how it was recorded) and ``upper.json`` (the manifest of the kernel's upper
dir). ``--compare`` records into a temp dir instead and diffs the upper manifests with the
stored ones (do two recordings agree? has this machine drifted?).
"""

from __future__ import annotations

import argparse
import errno
import gzip
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from typing import Any

from overlaysim.replay.manifest import diff_manifests, manifest
from overlaysim.testing import kernel
from tests.replay.cases import CASES, CASES_DIR, REC_ROOT, Case, Paths, build_lowers

GZIP_OVER = 100 * 1024
TIMEOUT = 600
CASE_KEYS = ("name", "description", "workload", "cwd", "env", "mount_point", "merged",
             "options", "mount_data", "kernel_mount_options", "lowerdir_count", "lowerdirs",
             "upperdir", "workdir", "strace", "logs", "content_unknown", "content_copied",
             "volatile", "uncaptured_calls", "exit_status", "machine", "notes")  # fmt: skip

#: The syscall name of a log line: after the pid (-f) and the time stamp (-t/-tt/-ttt).
_CALL = re.compile(r"^(?:\[pid\s+\d+\]\s*|\d+\s+)?(?:[\d:.]+\s+)?([a-z_][a-z0-9_]*)\(")
_IN_KERNEL_COPY = frozenset({"sendfile", "sendfile64", "copy_file_range", "splice", "tee",
                             "vmsplice", "io_uring_enter"})  # fmt: skip
_WRITES = frozenset({"write", "pwrite64", "writev", "pwritev", "pwritev2"})
_SHARED_WRITABLE_MMAP = re.compile(r"PROT_WRITE[^,]*, MAP_SHARED[^,]*, (?!-1)\d+")
_TRUNCATED = re.compile(r'(?<!\\)"\.\.\.')


def _umount(path: str) -> None:
    for _ in range(50):
        try:
            kernel.umount(path)
            return
        except OSError as e:
            if e.errno == errno.EINVAL:  # not mounted
                return
            if e.errno != errno.EBUSY:
                raise
            time.sleep(0.1)
    kernel.umount(path, kernel.MNT_DETACH)


def _clean(p: Paths) -> None:
    while kernel.mount_info(p.merged) is not None:
        _umount(p.merged)
    shutil.rmtree(p.base, ignore_errors=True)


def _umask() -> None:
    os.umask(0o022)


def _wait_for(what: str, test: Any, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while not test():
        if proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited first ({proc.returncode})")
        if time.monotonic() > end:
            raise RuntimeError(f"{what}: timed out")
        time.sleep(0.01)


def _proc_field(pid: int, name: str) -> str:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(name + ":"):
                    return line.split()[1]
    except OSError:
        pass
    return ""


def _run(case: Case, p: Paths, log: str, out: Any) -> int:
    argv, env = case.argv(p), case.environ(p)
    cwd = os.path.join(p.merged, case.cwd) if case.cwd else p.merged
    if not case.attach:
        cmd = ["strace", *case.strace, "-o", log, "--", *argv]
        return subprocess.run(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                              stderr=subprocess.STDOUT, preexec_fn=_umask,
                              timeout=TIMEOUT).returncode  # fmt: skip
    # The program chroots, chdirs to "/" and stops itself; strace attaches, then SIGCONT.
    prog = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                            stderr=subprocess.STDOUT, preexec_fn=_umask)  # fmt: skip
    tracer = None
    try:
        _wait_for("waiting for the program to stop",
                  lambda: _proc_field(prog.pid, "State") == "T", prog)  # fmt: skip
        tracer = subprocess.Popen(["strace", *case.strace, "-o", log, "-p", str(prog.pid)],
                                  stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=subprocess.STDOUT)  # fmt: skip
        _wait_for("waiting for strace to attach",
                  lambda: _proc_field(prog.pid, "TracerPid") not in ("", "0"), prog)  # fmt: skip
        time.sleep(0.2)
        os.kill(prog.pid, signal.SIGCONT)
        status = prog.wait(timeout=TIMEOUT)
        if tracer.wait(timeout=60) != 0:
            raise RuntimeError(f"strace -p exited with {tracer.returncode}")
        return status
    finally:
        for proc in (prog, tracer):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


def scan_uncaptured(paths: list[str]) -> dict[str, int]:
    """Calls that move data the log does not show (in-kernel copies, shared writable maps,
    strings cut at ``-s``), by kind."""
    found: Counter[str] = Counter()
    for path in paths:
        opener: Any = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt", errors="replace") as f:
            for line in f:
                m = _CALL.match(line)
                name = m.group(1) if m else ""
                if name in _IN_KERNEL_COPY:
                    found[name] += 1
                elif name in ("mmap", "mmap2") and _SHARED_WRITABLE_MMAP.search(line):
                    found["mmap MAP_SHARED|PROT_WRITE"] += 1
                elif name in _WRITES and _TRUNCATED.search(line):
                    found[f"{name} cut at -s"] += 1
    return dict(sorted(found.items()))


def _version(argv: list[str]) -> str:
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except OSError:
        return "?"
    return (res.stdout or res.stderr).splitlines()[0].strip() if res.stdout or res.stderr else "?"


def _machine() -> dict[str, str]:
    return {
        "kernel": platform.release(),
        "strace": _version(["strace", "-V"]),
        "python": platform.python_version(),
        "tar": _version(["tar", "--version"]),
        "sed": _version(["sed", "--version"]),
        "git": _version(["git", "--version"]),
        "make": _version(["make", "--version"]),
        "coreutils": _version(["mv", "--version"]),
    }


def record(case: Case, rec_root: str = REC_ROOT, out_dir: str | None = None,
           *, keep: bool = False) -> dict[str, Any]:  # fmt: skip
    """Record ``case`` and store it in ``out_dir`` (default ``cases/<name>``); returns the
    case.json document."""
    out_dir = out_dir or str(CASES_DIR / case.name)
    p = case.paths(rec_root)
    _clean(p)
    os.makedirs(p.base)
    try:
        stack = build_lowers(case, p.base)
        for d in (p.merged, p.input, p.home):
            os.makedirs(d, exist_ok=True)
        if case.inputs is not None:
            case.inputs(p)
        data = stack.options(case.options)
        log = f"{p.base}/trace" if "-ff" in case.strace else f"{p.base}/trace.log"
        kernel.mount("overlay", p.merged, "overlay", data)
        try:
            info = kernel.mount_info(p.merged)
            with open(f"{p.base}/output.txt", "wb") as out:
                status = _run(case, p, log, out)
        finally:
            _umount(p.merged)
        if status != 0:
            with open(f"{p.base}/output.txt", errors="replace") as f:
                tail = f.read()[-3000:]
            raise RuntimeError(f"{case.name}: the workload exited with {status}:\n{tail}")
        upper = manifest(os, p.upper)
        logs = sorted(n for n in os.listdir(p.base) if n.startswith("trace"))
        if not logs:
            raise RuntimeError(f"{case.name}: strace wrote no log")
        if os.path.isdir(out_dir):
            shutil.rmtree(out_dir)
        os.makedirs(out_dir)
        stored = []
        for name in logs:
            src = f"{p.base}/{name}"
            if os.path.getsize(src) > GZIP_OVER:
                with open(src, "rb") as fi, gzip.GzipFile(f"{out_dir}/{name}.gz", "wb",
                                                          mtime=0) as fo:  # fmt: skip
                    shutil.copyfileobj(fi, fo)
                stored.append(name + ".gz")
            else:
                shutil.copyfile(src, f"{out_dir}/{name}")
                stored.append(name)
        doc = {
            "name": case.name,
            "description": case.description,
            "workload": case.argv(p),
            "cwd": _cwd(case, p),
            "env": case.environ(p),
            "mount_point": "/" if case.attach else p.merged,
            "merged": p.merged,
            "options": case.options,
            "mount_data": data,
            "kernel_mount_options": info.super_options if info else "",
            "lowerdir_count": len(case.lowers),
            "lowerdirs": list(stack.lowers),
            "upperdir": stack.upper,
            "workdir": stack.work,
            "strace": {"flags": list(case.strace), "attach": case.attach,
                       "argv": ["strace", *case.strace, "-o", log]
                       + (["-p", "PID"] if case.attach else ["--", *case.argv(p)])},
            "logs": stored,
            "content_unknown": list(case.content_unknown),
            "content_copied": list(case.content_copied),
            "volatile": list(case.volatile),
            "uncaptured_calls": scan_uncaptured([f"{out_dir}/{n}" for n in stored]),
            "exit_status": status,
            "machine": _machine(),
            "notes": case.notes,
        }
        _dump(f"{out_dir}/case.json", doc)
        _dump(f"{out_dir}/upper.json", upper)
        return doc
    finally:
        if not keep:
            _clean(p)


def _cwd(case: Case, p: Paths) -> str:
    if case.attach:
        return "/"
    return os.path.join(p.merged, case.cwd) if case.cwd else p.merged


def _dump(path: str, doc: Any) -> None:
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


def load(out_dir: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    with open(f"{out_dir}/case.json") as f:
        doc = json.load(f)
    with open(f"{out_dir}/upper.json") as f:
        upper = json.load(f)
    return doc, upper


def comparable(upper: dict[str, dict[str, Any]], case: Case) -> dict[str, dict[str, Any]]:
    """``upper`` without the sha256 of the case's volatile paths."""
    out = {}
    for path, e in upper.items():
        if path in case.volatile:
            e = {k: v for k, v in e.items() if k != "sha256"}
        out[path] = e
    return out


def compare(case: Case, a: dict[str, dict[str, Any]], b: dict[str, dict[str, Any]],
            names: tuple[str, str] = ("stored", "new")) -> list[str]:  # fmt: skip
    return diff_manifests(comparable(a, case), comparable(b, case), names)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.replay.record_cases",
                                 description=__doc__.split("\n\n")[0])  # fmt: skip
    ap.add_argument("names", nargs="*", help=f"cases to record (default: all of "
                    f"{', '.join(CASES)})")  # fmt: skip
    ap.add_argument("--compare", action="store_true",
                    help="record into a temp dir and diff the upper manifests with the stored "
                    "ones; the stored cases are left alone")  # fmt: skip
    ap.add_argument("--keep", action="store_true",
                    help=f"leave the recording dirs under {REC_ROOT} (unmounted)")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("record_cases needs root (mount(2), mknod, trusted.* xattrs)", file=sys.stderr)
        return 2
    if shutil.which("strace") is None:
        print("record_cases needs strace", file=sys.stderr)
        return 2
    unknown = [n for n in args.names if n not in CASES]
    if unknown:
        print(f"unknown case(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    bad = 0
    for name in args.names or list(CASES):
        case = CASES[name]
        t0 = time.monotonic()
        if args.compare:
            tmp = tempfile.mkdtemp(prefix=f"ovs-rec-{name}-")
            try:
                record(case, out_dir=tmp, keep=args.keep)
                _, new = load(tmp)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            _, old = load(str(CASES_DIR / name))
            diffs = compare(case, old, new)
            bad += bool(diffs)
            print(f"{name}: {'SAME' if not diffs else f'{len(diffs)} difference(s)'}"
                  f" ({time.monotonic() - t0:.1f}s)")  # fmt: skip
            for line in diffs[:40]:
                print("  " + line)
            continue
        doc = record(case, keep=args.keep)
        out = CASES_DIR / name
        sizes = ", ".join(f"{n} {os.path.getsize(out / n):,} B" for n in doc["logs"][:4])
        more = f" (+{len(doc['logs']) - 4} more)" if len(doc["logs"]) > 4 else ""
        _, upper = load(str(out))
        print(f"{name}: {len(upper)} upper entries; {sizes}{more}; "
              f"uncaptured {doc['uncaptured_calls'] or 'none'} ({time.monotonic() - t0:.1f}s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
