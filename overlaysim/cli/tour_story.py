"""The story ``overlaysim tour`` tells: Docker's overlay2 and runc on the embedded image.

A reader loads an image, runs a container, and watches the four directories of an overlay
mount (lower, upper, work, merged) change as they would on a real Docker host; then saves
the image, copies it with skopeo and runs it with runc. The sentence after each step states
facts read back from the world (which directories exist, what is mounted), so it cannot drift
from what the simulator did. ``NEXT`` lists the commands the tour ends with; the tests run
each of them on the saved world.
"""

from __future__ import annotations

import json
import os
import posixpath
import tarfile

from overlaysim.cli.tour_runner import Tour
from overlaysim.demo_image import DEMO_TAG
from overlaysim.world import World

HOME = "/var/lib/docker/overlay2"
IMAGE = DEMO_TAG.split(":")[0]
NAME = "web"
RUNC_ID = "mycontainer"
MOBY_ROOT = "/run/docker/runtime-runc/moby"

# What the reader can type next, on the world the tour leaves behind (run by the tests).
NEXT: list[list[str]] = [
    ["world", "info"],
    ["docker", "images"],
    ["docker", "ps", "-a"],
    ["docker", "run", "-d", "--name", "again", IMAGE, "sleep", "infinity"],
    ["docker", "exec", "again", "sh", "-c", "echo hi > /root/note; ls -la /root"],
    ["docker", "diff", "again"],
    ["sh", "-c", f"mount | grep overlay; ls -l {HOME}/l"],
    ["runc", "list"],
]


def layer_dirs(w: World) -> list[str]:
    """The layer directories of the overlay2 home (everything but the ``l/`` link dir)."""
    try:
        return sorted(n for n in w.fs.os.listdir(HOME) if n != "l")
    except FileNotFoundError:
        return []


def overlays(w: World) -> list[str]:
    return [m.target for m in w.fs.mounts() if m.fstype == "overlay"]


def _count(n: int, one: str, many: str = "") -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _disk_listing(root: str) -> str:
    """``find ROOT -type f`` with sizes, in a stable order."""
    rows = []
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for f in sorted(files):
            p = os.path.join(d, f)
            rows.append(f"{os.path.getsize(p):>8}  {p}")
    return "\n".join(rows)


def tar_listing(path: str) -> str:
    """What ``tar tf PATH`` prints: member names in archive order, directories with a
    trailing slash (Python's tarfile drops it from the name)."""
    with tarfile.open(path) as tf:
        return "\n".join(m.name + ("/" if m.isdir() else "") for m in tf.getmembers())


def tar_json(path: str, member: str) -> str:
    """``tar xOf PATH MEMBER | python3 -m json.tool``: the member re-indented by 4 spaces."""
    with tarfile.open(path) as tf:
        try:
            f = tf.extractfile(member)
        except KeyError:
            f = None
        if f is None:
            return f"tar: {member}: Not found in archive"
        return json.dumps(json.loads(f.read()), indent=4)


def story(t: Tour, where: str) -> None:
    """Tell the whole story; ``where`` is the real-disk directory for archives and bundles."""
    archive = posixpath.join(where, "demo.tar")
    saved = posixpath.join(where, "saved.tar")
    oci = posixpath.join(where, "demo-oci")
    bundle = posixpath.join(where, "bundle")

    t.step("Load the embedded image")
    t.run("image", "demo", "-o", archive)
    t.run("docker", "load", "-i", archive)
    t.run("docker", "images")
    t.sh(f"ls {HOME} {HOME}/l")
    with t.look() as w:
        n, mounted = len(layer_dirs(w)), overlays(w)
    t.why(f"docker load unpacked each layer tar into its own {HOME}/<id>/diff ("
          f"{_count(n, 'layer directory', 'layer directories')}, each with a 26-character "
          f"short name in l/); these will be the lower layers, and {len(mounted)} overlays "
          "are mounted so far.")  # fmt: skip

    t.step("Run a container")
    cid = t.run("docker", "run", "-d", "--name", NAME, IMAGE, "sleep", "infinity").strip()
    t.run("docker", "ps")
    with t.look() as w:
        n, mounted = len(layer_dirs(w)), overlays(w)
    t.why(f"Docker added two layers for the container, <id>-init (the files Docker itself "
          f"bind-mounts, like /etc/hostname) and <id> (empty diff/ and work/), {n} layer "
          f"directories now, and mounted {_count(len(mounted), 'overlay')} at "
          ".../<id>/merged, the container's root.")  # fmt: skip

    t.step("Where the four directories are: docker inspect")
    fmt = '{{"\\n"}}'.join(f"{k}={{{{.GraphDriver.Data.{k}}}}}"
                     for k in ("LowerDir", "UpperDir", "WorkDir", "MergedDir"))  # fmt: skip
    dirs = dict(line.split("=", 1) for line in t.run("docker", "inspect", "-f", fmt, NAME).split())
    upper, work, merged = dirs["UpperDir"], dirs["WorkDir"], dirs["MergedDir"]
    layer = posixpath.dirname(upper)
    app = dirs["LowerDir"].split(":")[1]  # the image's top layer: the one adding hello.sh
    t.why("LowerDir lists the -init layer first, then the image's layers top-down; UpperDir "
          "receives every write, WorkDir is the kernel's scratch space, MergedDir is the "
          "union the container sees.")  # fmt: skip

    t.step("The mount and its short l/ links")
    t.sh("mount | grep overlay")
    t.sh(f"ls -l {HOME}/l/")
    t.sh(f'cd {layer}; echo "link:  $(cat link)"; echo "lower: $(cat lower)"')
    t.why("The mount names each lower layer through its l/ link, a symlink to the layer's "
          "diff/, so the options stay within one page however many layers there are; `lower` "
          "records the chain, `link` the layer's own short name.")  # fmt: skip

    t.step("Write in the container: the upper directory fills")
    t.run("docker", "exec", NAME, "touch", "/tmp/foo")
    t.sh(f"ls -la {upper}/tmp")
    t.why(
        "/tmp existed only in the base layer, so the kernel copied the directory up into "
        "upper (diff/tmp) and created foo there; the lower layers are never written."
    )

    t.step("Delete a file of the image: a whiteout")
    t.run("docker", "exec", NAME, "rm", "/hello.sh")
    t.sh(f"ls -l {upper}")
    t.sh(f"ls -la {work}/work")
    t.run("docker", "exec", NAME, "ls", "-l", "/hello.sh", expect=2)
    t.sh(f"ls -l {app}/hello.sh")
    t.why("hello.sh still exists in the app layer below (untouched), so upper records its "
          "deletion as a whiteout, a character device 0,0 hard-linked to a master in "
          "work/work, and merged no longer shows it.")  # fmt: skip

    t.step("docker diff reads the upper directory")
    t.run("docker", "diff", NAME)
    t.why(
        "A is a file only upper has, C a directory copied up, D a whiteout: docker diff "
        "is a walk of diff/, nothing more."
    )

    t.step("Ask your own questions: explain and compare")
    said = t.run("explain", f"{NAME}:/hello.sh")
    hidden = "whiteout" in said
    t.why(("explain follows ovl_lookup layer by layer: the app layer still has hello.sh, "
           "and the whiteout in upper hides it" if hidden else
           "explain does NOT show the whiteout that hides hello.sh (unexpected)")
          + "; it also says what the next write, chmod, rename or unlink would do.")  # fmt: skip
    if not hidden:
        t.failures.append(f"step {t.number}: explain does not name the whiteout of /hello.sh")
    told = t.run("compare", "--image", archive, "-o", "redirect_dir=off", "-o", "redirect_dir=on",
                 "--", "mv /etc /etc2")  # fmt: skip
    exdev, redirect = "EXDEV /etc" in told, "redirect /etc2 -> 'etc'" in told
    t.why("The same mv on this image's layers under two option sets: "
          + ("without redirect_dir, rename(2) of a merged dir fails with EXDEV and mv copies "
             "every file up; with it, one redirect xattr records the old name."
             if exdev and redirect else "the EXDEV/redirect contrast is missing (unexpected)."))
    if not (exdev and redirect):
        t.failures.append(f"step {t.number}: compare does not show EXDEV against a redirect")

    t.step("runc underneath Docker")
    t.run("runc", "--root", MOBY_ROOT, "list")
    state = t.run("runc", "--root", MOBY_ROOT, "state", cid)
    rootfs_is_merged = f'"rootfs": "{merged}"' in state
    t.why(("Docker asked runc to start the container with merged/ as its rootfs"
           if rootfs_is_merged else "The container's rootfs is NOT merged/ (unexpected)")
          + ": runc only sees one directory, the overlay is Docker's business.")  # fmt: skip
    if not rootfs_is_merged:
        t.failures.append(f"step {t.number}: runc state does not show {merged} as rootfs")

    t.step("Stop: merged goes away, upper stays")
    t.run("docker", "stop", NAME)
    t.sh(f"ls -l {layer}")
    with t.look() as w:
        mounted = overlays(w)
        kept = sorted(w.fs.os.listdir(upper))
    t.why(f"Docker unmounted the overlay ({_count(len(mounted), 'overlay')} mounted now) and "
          f"removed merged/; diff/ still holds {', '.join(kept)}, so `docker start` would "
          "mount the same changes again.")  # fmt: skip

    t.step("Remove: the container's layers are deleted")
    t.run("docker", "rm", NAME)
    t.sh(f"ls {HOME} {HOME}/l")
    with t.look() as w:
        n = len(layer_dirs(w))
    t.why(
        f"The -init and read-write layers (and their l/ links) are gone; {n} layer "
        "directories remain, the image's, untouched by everything the container did."
    )

    t.step("Save the image to the real disk")
    t.run("docker", "save", "-o", saved, IMAGE)
    t.disk(f"tar tf {saved}", tar_listing(saved))
    t.disk(f"tar xOf {saved} manifest.json | python3 -m json.tool", tar_json(saved, "manifest.json"))
    t.run("image", "inspect", saved)
    t.why(
        "docker save re-tarred each lower diff/ byte for byte into blobs/sha256/ (the digests "
        "match the ones loaded); manifest.json names the config and the layer tars in order, "
        "index.json and oci-layout make the same archive an OCI layout."
    )

    t.step("Copy it with skopeo to an OCI layout")
    t.run("skopeo", "copy", f"docker-daemon:{DEMO_TAG}", f"oci:{oci}:latest")
    t.disk(f"find {oci} -type f", _disk_listing(oci))
    with open(posixpath.join(oci, "index.json"), encoding="utf-8") as f:
        t.disk(f"cat {oci}/index.json", f.read())
    t.why(
        "skopeo read the same lower layers from the daemon and wrote them gzip-compressed "
        "as OCI blobs; nothing in lower, upper, work or merged changed."
    )

    t.step("A runc bundle from the OCI layout")
    t.run("image", "bundle", oci, "-o", bundle)
    config = posixpath.join(bundle, "config.json")
    os.unlink(config)
    t.disk(f"rm {config}", "")
    t.run("runc", "spec", "-b", bundle)
    with open(config, encoding="utf-8") as f:
        spec = json.load(f)
    spec["process"].update(terminal=False, args=["sleep", "1d"])
    spec["root"]["readonly"] = False
    with open(config, "w", encoding="utf-8") as f:
        json.dump(spec, f, indent="\t")
    t.note(f'(the tour edited {config}: "terminal": false and "args": ["sleep", "1d"], as '
           'runc\'s README asks before a detached run, and "readonly": false so the container '
           "may write)")  # fmt: skip
    t.why(
        "rootfs/ is the flattened image, a plain directory: with runc alone there is no "
        "lower, upper or work, the container writes straight into rootfs/."
    )

    t.step("runc run, list, kill, delete")
    t.run("runc", "run", "-d", "-b", bundle, RUNC_ID)
    t.run("runc", "list")
    rootfs = posixpath.join(os.path.abspath(bundle), "rootfs")
    t.run("runc", "exec", RUNC_ID, "touch", "/tmp/bar")
    t.sh(f"ls -l {rootfs}/tmp")
    t.run("runc", "kill", RUNC_ID, "KILL")
    t.run("runc", "list")
    t.run("runc", "delete", RUNC_ID)
    t.run("runc", "list")
    t.why(f"runc imported the bundle into the machine at {os.path.abspath(bundle)}; /tmp/bar "
          "landed in rootfs/ itself (no copy-up, nothing to undo), and delete removed only "
          "runc's state in /run/runc, not the bundle.")  # fmt: skip
