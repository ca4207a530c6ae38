"""Get/Put: option strings, merged/ lifecycle, reference counts, inspect and info data."""

from __future__ import annotations

import errno

import pytest

from overlaysim.overlay2 import MountTooLarge, StorageError
from tests.overlay2.conftest import HOME, Docker


def chain(dk: Docker, n: int, top_rw: bool = True) -> list[str]:
    """n image layers, plus (top_rw) a read-write layer on them; ids are readable hex."""
    ids: list[str] = []
    for i in range(n):
        lid = f"{i + 1:064x}"
        dk.drv.create(lid, ids[-1] if ids else None)
        ids.append(lid)
    if top_rw:
        dk.drv.create_read_write("c" * 64, ids[-1])
        ids.append("c" * 64)
    return ids


def test_rw_mount_line_and_lifecycle(dk: Docker) -> None:
    fs, drv = dk.fs, dk.drv
    ids = chain(dk, 2)
    top = ids[-1]
    links = [drv.link(x) for x in ids]
    merged = drv.get(top)
    assert merged == f"{HOME}/{top}/merged"
    lowers = f"{HOME}/l/{links[1]}:{HOME}/l/{links[0]}"
    data = f"index=off,lowerdir={lowers},upperdir={HOME}/{top}/diff,workdir={HOME}/{top}/work"
    assert drv.mount_data(top).data == data
    line = drv.mount_line(top)
    assert line is not None
    assert line.startswith(f"overlay {merged} overlay rw,relatime,lowerdir={lowers},")
    assert f",upperdir={HOME}/{top}/diff,workdir={HOME}/{top}/work" in line
    assert "index=off" not in line  # the kernel shows index= only off its default
    assert any(m.target == merged and m.fstype == "overlay" for m in fs.mounts())
    # reference counted: a second get does not mount again, the first put does not unmount
    assert drv.get(top) == merged
    assert drv.ref_count(top) == 2
    assert sum(m.target == merged for m in fs.mounts()) == 1
    drv.put(top)
    assert drv.is_mounted(top) and drv.ref_count(top) == 1
    drv.put(top)
    assert not drv.is_mounted(top) and drv.ref_count(top) == 0
    assert "merged" not in fs.os.listdir(f"{HOME}/{top}")
    assert drv.mount_line(top) is None


def test_committed_layer_mounts_read_only(dk: Docker) -> None:
    fs, drv = dk.fs, dk.drv
    ids = chain(dk, 3, top_rw=False)
    mid = ids[1]  # has a child: committed
    md = drv.mount_data(mid)
    assert md.readonly and not md.relative
    assert md.data == f"index=off,lowerdir={HOME}/{mid}/diff:{HOME}/l/{drv.link(ids[0])}"
    merged = drv.get(mid)
    line = drv.mount_line(mid)
    assert line is not None and line.split()[3].startswith("ro,")
    with pytest.raises(OSError) as exc:
        fs.open(f"{merged}/x", "w")
    assert exc.value.errno == errno.EROFS
    drv.put(mid)


def test_base_layer_is_not_mounted(dk: Docker) -> None:
    drv = dk.drv
    (base,) = chain(dk, 1, top_rw=False)
    assert drv.get(base) == f"{HOME}/{base}/diff"
    assert not drv.is_mounted(base)
    drv.put(base)  # nothing to do
    with pytest.raises(StorageError):
        drv.mount_data(base)


def test_get_of_missing_layer(dk: Docker) -> None:
    with pytest.raises(FileNotFoundError):
        dk.drv.get("e" * 64)


def test_refcount_survives_a_new_process(dk: Docker) -> None:
    ids = chain(dk, 1)
    dk.drv.get(ids[-1])
    dk.drv.get(ids[-1])
    later = dk.again()
    assert later.drv.ref_count(ids[-1]) == 2
    later.drv.put(ids[-1])
    assert later.drv.is_mounted(ids[-1])
    later.drv.put(ids[-1])
    assert not dk.drv.is_mounted(ids[-1])


def test_mounted_without_a_count_counts_once(dk: Docker) -> None:
    """As moby's mountref counter after a restart: found mounted means one reference."""
    ids = chain(dk, 1)
    dk.drv.get(ids[-1])
    dk.drv.state.set("mounts", {})
    assert dk.drv.ref_count(ids[-1]) == 1
    dk.drv.put(ids[-1])
    assert not dk.drv.is_mounted(ids[-1])


def test_put_detaches_a_busy_mount(dk: Docker) -> None:
    fs, drv = dk.fs, dk.drv
    ids = chain(dk, 1)
    merged = drv.get(ids[-1])
    sh = fs.as_user(0, 0)
    sh.os.chdir(merged + "/")  # a shell sitting in the container's root
    drv.put(ids[-1])  # MNT_DETACH: gone from the mount table even though busy
    assert not drv.is_mounted(ids[-1])
    assert "merged" not in fs.os.listdir(f"{HOME}/{ids[-1]}")


def test_remove_unmounts_first(dk: Docker) -> None:
    ids = chain(dk, 1)
    dk.drv.get(ids[-1])
    dk.drv.remove(ids[-1])
    assert not dk.drv.exists(ids[-1])
    assert not any(m.target.startswith(f"{HOME}/{ids[-1]}") for m in dk.fs.mounts())
    assert dk.drv.ref_count(ids[-1]) == 0


@pytest.mark.parametrize(("lowers", "relative"), [(71, False), (72, True), (128, True)])
def test_long_option_string_switches_to_relative_paths(
    dk: Docker, lowers: int, relative: bool
) -> None:
    """§1.8: absolute length 225 + 54n for a rw layer; n >= 72 mounts with l/ paths."""
    fs, drv = dk.fs, dk.drv
    ids = chain(dk, lowers)
    top = ids[-1]
    md = drv.mount_data(top)
    assert md.relative is relative
    if not relative:
        assert len(md.data) == 225 + 54 * lowers
        assert len(md.data) <= 4095
        return
    rel_lower = ":".join(drv.lower(top))
    assert md.data == f"index=off,lowerdir={rel_lower},upperdir={top}/diff,workdir={top}/work"
    assert (md.target, md.cwd) == (f"{top}/merged", HOME)
    assert len(md.data) == 175 + 29 * lowers
    merged = drv.get(top)
    line = drv.mount_line(top)
    assert line is not None
    assert line.startswith(f"overlay {merged} overlay rw,relatime,lowerdir=l/")
    assert f",upperdir={top}/diff,workdir={top}/work" in line
    # every layer is visible through the relative mount
    for i, lid in enumerate(ids[:-1]):
        with fs.open(f"{HOME}/{lid}/diff/f{i}", "w") as f:
            f.write(str(i))
    assert len([n for n in fs.os.listdir(merged) if n.startswith("f")]) == lowers
    assert fs.os.getcwd() == "/"  # the caller's cwd is untouched
    drv.put(top)
    assert not drv.is_mounted(top)


def test_mount_label_is_appended_and_checked(dk: Docker) -> None:
    drv = dk.drv
    ids = chain(dk, 1)
    label = "system_u:object_r:container_file_t:s0:c1,c2"
    assert drv.mount_data(ids[-1], label).data.endswith(f',context="{label}"')
    # without SELinux the kernel refuses context= (as here): Docker's error, nothing left over
    with pytest.raises(OSError, match=r"error creating overlay mount to .*: invalid argument"):
        drv.get(ids[-1], label)
    assert not drv.is_mounted(ids[-1]) and drv.ref_count(ids[-1]) == 0
    assert "merged" not in dk.fs.os.listdir(f"{HOME}/{ids[-1]}")
    with pytest.raises(MountTooLarge, match="mount label too large"):
        drv.mount_data(ids[-1], "x" * 5000)


def test_metadata_keys(dk: Docker) -> None:
    drv = dk.drv
    ids = chain(dk, 2)
    base, mid, top = ids
    assert drv.metadata(base) == {
        "MergedDir": f"{HOME}/{base}/merged",
        "UpperDir": f"{HOME}/{base}/diff",
        "WorkDir": f"{HOME}/{base}/work",
    }
    meta = drv.metadata(top)
    assert list(meta) == ["LowerDir", "MergedDir", "UpperDir", "WorkDir"]
    assert meta["LowerDir"] == f"{HOME}/{mid}/diff:{HOME}/{base}/diff"
    with pytest.raises(FileNotFoundError):
        drv.metadata("e" * 64)


def test_status_lines(dk: Docker) -> None:
    assert dk.drv.status() == [
        ("Backing Filesystem", "extfs"),
        ("Supports d_type", "true"),
        ("Using metacopy", "false"),
        ("Native Overlay Diff", "true"),
        ("userxattr", "false"),
    ]
    assert str(dk.drv) == "overlay2"


def test_start_up_probes_run_on_the_engine(dk: Docker) -> None:
    before = sorted(dk.fs.os.listdir(HOME))
    dk.drv.native_diff = False
    status = dict(dk.drv.probe())
    assert status["Native Overlay Diff"] == "true" and dk.drv.naive_diff_reason is None
    assert status["Using metacopy"] == "false"
    assert sorted(dk.fs.os.listdir(HOME)) == before  # the probe dirs are gone
    assert not any(m.target.startswith(HOME) for m in dk.fs.mounts())
