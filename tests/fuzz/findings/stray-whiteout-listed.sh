#!/usr/bin/env bash
# overlaysim: fuse-overlayfs judged against the kernel's overlay (run as root)
set -u
B=$(mktemp -d)
xset() { python3 -c 'import os, sys
os.setxattr(sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3]), follow_symlinks=False)' "$@"; }
cleanup() { umount "$B"/k/m 2>/dev/null; fusermount3 -u "$B"/f/m 2>/dev/null || umount -l "$B"/f/m 2>/dev/null; rm -rf "$B"; }
trap cleanup EXIT
mkdir -p "$B"/k/l0
chmod 0755 "$B"/k/l0
chown -h 0:0 "$B"/k/l0
mkdir -p "$B"/k/u
chmod 0755 "$B"/k/u
chown -h 0:0 "$B"/k/u
mkdir "$B"/k/u/e
chmod 0755 "$B"/k/u/e
chown -h 0:0 "$B"/k/u/e
mknod -m 000 "$B"/k/u/e/c c 0 0
mkdir "$B"/k/w
mkdir "$B"/k/m
mkdir -p "$B"/f/l0
chmod 0755 "$B"/f/l0
chown -h 0:0 "$B"/f/l0
mkdir -p "$B"/f/u
chmod 0755 "$B"/f/u
chown -h 0:0 "$B"/f/u
mkdir "$B"/f/u/e
chmod 0755 "$B"/f/u/e
chown -h 0:0 "$B"/f/u/e
mknod -m 000 "$B"/f/u/e/c c 0 0
mkdir "$B"/f/w
mkdir "$B"/f/m
mount -t overlay overlay -o "lowerdir=$B/k/l0,upperdir=$B/k/u,workdir=$B/k/w" "$B"/k/m || echo "kernel: mount failed"
fuse-overlayfs -o "lowerdir=$B/f/l0,upperdir=$B/f/u,workdir=$B/f/w,dev,suid" "$B"/f/m 2>/dev/null || echo "fuse-overlayfs: mount failed"
cat > "$B"/run.py <<'PY'
import errno, os, sys
os.chdir(sys.argv[1])
ns = {"os": os, "r": None, "d": None}
try:
    exec(sys.argv[3], ns)
    out = "ok" + (" " + repr(ns["r"]) if ns["r"] is not None else "")
    out += f" data={ns['d']!r}" if ns["d"] is not None else ""
except OSError as e:
    out = errno.errorcode.get(e.errno, str(e.errno))
print(f"{sys.argv[4]:>15} op {sys.argv[2]}: {out}")
PY
run() { python3 "$B"/run.py "$B"/k/m "$1" "$2" kernel; python3 "$B"/run.py "$B"/f/m "$1" "$2" fuse-overlayfs; }
tree() { (cd "$1" && find . -mindepth 1 | sort | while read -r p; do
  stat -c '%n %F mode=%a uid=%u nlink=%h ino=%i size=%s' "$p" 2>&1; done); }
echo "--- kernel merged"; tree "$B"/k/m
echo "--- fuse-overlayfs merged"; tree "$B"/f/m
umount "$B"/k/m; fusermount3 -u "$B"/f/m
mount -t overlay overlay -o "lowerdir=$B/k/l0,upperdir=$B/k/u,workdir=$B/k/w" "$B"/k/m && echo "kernel: mounted again" || echo "kernel: mount again failed"
fuse-overlayfs -o "lowerdir=$B/f/l0,upperdir=$B/f/u,workdir=$B/f/w,dev,suid" "$B"/f/m 2>/dev/null && echo "fuse-overlayfs: mounted again" || echo "fuse-overlayfs: mount again failed"
