#!/usr/bin/env python3
"""A third-party-style overlaysim-fuzz-protocol server: the kernel's overlay over the real os.

It imports nothing from overlaysim -- only the standard library -- to show what judging your
own union filesystem takes: build the layers from JSON, mount, answer os calls. Replace
``do_mount``/``do_umount`` with your filesystem's. Run as root:

    overlaysim fuzz --against "python3 examples/fuzz_server_os.py" --sequences 200
"""

import base64
import ctypes
import errno
import json
import os
import shutil
import stat
import sys
import tempfile

libc = ctypes.CDLL(None, use_errno=True)
state = {"base": None, "opts": "", "mounted": False, "tmpfs": []}


def check(ret, path):
    if ret != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), path)


def do_mount(opts, target):
    check(libc.mount(b"overlay", target.encode(), b"overlay", 0, opts.encode()), target)


def do_umount(target):
    check(libc.umount2(target.encode(), 0), target)


def renameat2(src, dst, flags):
    check(libc.syscall(316, -100, src.encode(), -100, dst.encode(), ctypes.c_uint(flags)), src)


def build(node, path, prefix, links, times):
    kind = node["type"]
    if kind == "dir":
        os.makedirs(path, exist_ok=True)
        for name, child in node.get("entries", {}).items():
            build(child, os.path.join(path, name), prefix, links, times)
    elif kind == "file":
        with open(path, "wb") as f:
            f.write(base64.b64decode(node.get("data", "")))
    elif kind == "symlink":
        os.symlink(node["target"], path)
    elif kind == "whiteout":
        if node.get("form") == "xattr":
            open(path, "wb").close()
            os.setxattr(path, prefix + "whiteout", b"y")
        else:
            os.mknod(path, stat.S_IFCHR, os.makedev(0, 0))
        return
    elif kind == "device":
        os.mknod(path, (stat.S_IFCHR if node["kind"] == "chr" else stat.S_IFBLK) | 0o600,
                 os.makedev(node["major"], node["minor"]))
    elif kind == "fifo":
        os.mkfifo(path, 0o600)
    elif kind == "hardlink":
        links.append((node["target"], path))
        return
    if kind != "symlink":
        os.chmod(path, node.get("mode", 0o644))
    os.chown(path, node.get("uid", 0), node.get("gid", 0), follow_symlinks=False)
    for name, value in node.get("xattrs", {}).items():
        os.setxattr(path, name, base64.b64decode(value))
    if node.get("opaque"):
        os.setxattr(path, prefix + "opaque", node["opaque"].encode())
    if node.get("mtime_ns") is not None:
        times.append((path, node["mtime_ns"]))  # applied children first, at the end


def build_layer(node, root, prefix):
    links, times = [], []
    build(node, root, prefix, links, times)
    for target, path in links:
        os.link(os.path.join(root, target), path)
    for path, ns in reversed(times):
        os.utime(path, ns=(ns, ns), follow_symlinks=False)


def setup(msg):
    close()
    base = state["base"] = tempfile.mkdtemp(prefix="fuzz-server-")
    layers, prefix = msg["layers"], msg.get("xattr_prefix", "trusted.overlay.")
    lowers = [os.path.join(base, f"l{i}") for i in range(len(layers["lowers"]))]
    data = [os.path.join(base, f"d{i}") for i in range(len(layers.get("data", [])))]
    for path in lowers if layers.get("separate_fs") else []:  # each on a tmpfs of its own
        os.mkdir(path)
        check(libc.mount(b"tmpfs", path.encode(), b"tmpfs", 0, b"mode=755"), path)
        state["tmpfs"].append(path)
    for node, path in zip(layers["lowers"] + layers.get("data", []), lowers + data, strict=True):
        build_layer(node, path, prefix)
    opts = "lowerdir=" + ":".join(lowers) + "".join("::" + d for d in data)
    upper = work = None
    if layers.get("upper") is not None:
        upper, work = os.path.join(base, "u"), os.path.join(base, "w")
        build_layer(layers["upper"], upper, prefix)
        os.mkdir(work)
        opts += f",upperdir={upper},workdir={work}"
    state["opts"] = opts + ("," + msg["options"] if msg.get("options") else "")
    os.mkdir(os.path.join(base, "m"))
    remount()
    return {"mount": os.path.join(base, "m"), "upper": upper, "work": work}


def umount():
    if state["mounted"]:
        do_umount(os.path.join(state["base"], "m"))
        state["mounted"] = False


def remount():
    umount()
    do_mount(state["opts"], os.path.join(state["base"], "m"))
    state["mounted"] = True


def close():
    if state["base"]:
        try:
            umount()
        finally:
            while state["tmpfs"]:
                do_umount(state["tmpfs"].pop())
            shutil.rmtree(state["base"], ignore_errors=True)
            state["base"] = None


def decode(v):
    if isinstance(v, dict) and "b64" in v:
        return base64.b64decode(v["b64"])
    return [decode(x) for x in v] if isinstance(v, list) else v


def encode(v):
    if isinstance(v, bytes):
        return {"b64": base64.b64encode(v).decode()}
    if isinstance(v, os.stat_result):
        names = ("mode", "ino", "dev", "nlink", "uid", "gid", "size", "rdev",
                 "atime_ns", "mtime_ns", "ctime_ns")
        return {"stat": {f"st_{n}": getattr(v, f"st_{n}") for n in names}}
    return [encode(x) for x in v] if isinstance(v, list) else v


def answer(msg):
    control = {"setup": lambda: setup(msg), "umount": umount, "remount": remount, "close": close}
    if msg.get("control") in control:
        return control[msg["control"]]()
    args = decode(msg.get("args", []))
    kwargs = {k: tuple(v) if k == "ns" else decode(v) for k, v in msg.get("kwargs", {}).items()}
    fn = renameat2 if msg["call"] == "renameat2" else getattr(os, msg["call"])
    return encode(fn(*args, **kwargs))


def main():
    print(json.dumps({"overlaysim-fuzz-protocol": 1, "server": "kernel overlay via os"}), flush=True)
    try:
        for line in sys.stdin:
            try:
                reply = {"ok": answer(json.loads(line))}
            except OSError as e:
                reply = {"errno": errno.errorcode.get(e.errno, e.errno)}
            except Exception as e:  # every request gets an answer
                reply = {"error": f"{type(e).__name__}: {e}"}
            print(json.dumps(reply), flush=True)
    finally:
        close()


if __name__ == "__main__":
    main()
