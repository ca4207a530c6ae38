"""The on-disk layout of /var/lib/docker/overlay2 (spec §1.2-1.5, §1.7, §1.9, §8.1-8.5)."""

from __future__ import annotations

import re
import stat

import pytest

from overlaysim import HostFS
from overlaysim.overlay2 import (
    IdGen,
    LayerExists,
    MaxDepthExceeded,
    Overlay2Driver,
    StorageError,
)
from tests.overlay2.conftest import HOME, Docker, new_docker, read

LINK_RE = re.compile(r"[A-Z2-7]{26}")


def mode(fs: HostFS, path: str) -> int:
    return stat.S_IMODE(fs.os.lstat(path).st_mode)


def example_state(dk: Docker) -> tuple[list[str], str]:
    """§1.9: an image of three layers and one running container (init + rw layer)."""
    drv = dk.drv
    layers: list[str] = []
    for _ in range(3):
        lid = drv.ids.random_id()
        drv.create(lid, layers[-1] if layers else None)
        layers.append(lid)
    mount_id = drv.ids.random_id()
    init = drv.create_init(mount_id, layers[-1])
    drv.create_read_write(mount_id, init)
    drv.get(mount_id)
    return layers, mount_id


def test_example_shape(dk: Docker) -> None:
    fs = dk.fs
    (l0, l1, l2), mid = example_state(dk)
    init = f"{mid}-init"
    assert sorted(fs.os.listdir(HOME)) == sorted([l0, l1, l2, mid, init, "l"])
    entries = {
        l0: ["committed", "diff", "link"],
        l1: ["committed", "diff", "link", "lower", "work"],
        l2: ["committed", "diff", "link", "lower", "work"],
        init: ["committed", "diff", "link", "lower", "work"],
        mid: ["diff", "link", "lower", "merged", "work"],
    }
    for lid, names in entries.items():
        assert sorted(fs.os.listdir(f"{HOME}/{lid}")) == names, lid
    # nlink of a layer dir is 2 + subdirectories: base 3, child 4, mounted child 5
    assert fs.os.lstat(f"{HOME}/{l0}").st_nlink == 3
    assert fs.os.lstat(f"{HOME}/{l1}").st_nlink == 4
    assert fs.os.lstat(f"{HOME}/{mid}").st_nlink == 5
    # work/work exists only in layers that were mounted read-write
    assert fs.os.listdir(f"{HOME}/{l1}/work") == []
    assert fs.os.listdir(f"{HOME}/{init}/work") == ["work"]
    assert fs.os.listdir(f"{HOME}/{mid}/work") == ["work"]
    assert mode(fs, f"{HOME}/{mid}/work/work") == 0


def test_link_lower_committed_bytes(dk: Docker) -> None:
    fs, drv = dk.fs, dk.drv
    (l0, l1, l2), mid = example_state(dk)
    init = f"{mid}-init"
    links = {x: read(fs, f"{HOME}/{x}/link").decode() for x in (l0, l1, l2, mid, init)}
    for lid, link in links.items():
        assert LINK_RE.fullmatch(link), link  # 26 chars, no newline
        assert fs.os.readlink(f"{HOME}/l/{link}") == f"../{lid}/diff"
        assert fs.os.lstat(f"{HOME}/l/{link}").st_size == (77 if lid == init else 72)
    assert sorted(fs.os.listdir(f"{HOME}/l")) == sorted(links.values())
    assert not fs.os.path.exists(f"{HOME}/{l0}/lower")
    assert read(fs, f"{HOME}/{l1}/lower") == f"l/{links[l0]}".encode()
    assert read(fs, f"{HOME}/{l2}/lower") == f"l/{links[l1]}:l/{links[l0]}".encode()
    assert read(fs, f"{HOME}/{init}/lower") == f"l/{links[l2]}:l/{links[l1]}:l/{links[l0]}".encode()
    assert read(fs, f"{HOME}/{mid}/lower") == (
        f"l/{links[init]}:l/{links[l2]}:l/{links[l1]}:l/{links[l0]}".encode()
    )
    for lid in (l0, l1, l2, init):
        assert read(fs, f"{HOME}/{lid}/committed") == b""
    assert not fs.os.path.exists(f"{HOME}/{mid}/committed")
    assert drv.lower(mid) == [f"l/{links[x]}" for x in (init, l2, l1, l0)]
    assert drv.parent_id(mid) == init and drv.parent_id(l0) == ""


def test_modes_and_owners(dk: Docker) -> None:
    fs = dk.fs
    (l0, l1, _), mid = example_state(dk)
    assert mode(fs, "/var/lib/docker") == 0o710
    assert mode(fs, HOME) == 0o710
    assert mode(fs, f"{HOME}/l") == 0o700
    expect = {
        f"{HOME}/{l1}": 0o710,
        f"{HOME}/{l1}/diff": 0o755,
        f"{HOME}/{l1}/work": 0o700,
        f"{HOME}/{l1}/link": 0o644,
        f"{HOME}/{l1}/lower": 0o644,
        f"{HOME}/{l0}/committed": 0o600,
        # merged/ is made 0700, but while mounted stat shows the overlay root (diff/: 0755)
        f"{HOME}/{mid}/merged": 0o755,
    }
    for path, m in expect.items():
        assert mode(fs, path) == m, path
        st = fs.os.lstat(path)
        assert (st.st_uid, st.st_gid) == (0, 0)
    # nothing else lies around (no temp files of the atomic writes)
    assert sorted(fs.os.listdir(f"{HOME}/{l1}")) == ["committed", "diff", "link", "lower", "work"]


def test_modes_do_not_depend_on_the_callers_umask() -> None:
    fs = HostFS()
    fs.os.umask(0o077)
    drv = Overlay2Driver(fs, ids=IdGen(5))
    drv.create("a" * 64)
    drv.create("b" * 64, "a" * 64)
    assert mode(fs, f"{HOME}/{'b' * 64}/diff") == 0o755
    assert mode(fs, f"{HOME}/{'b' * 64}/lower") == 0o644


def test_ids_are_deterministic_and_continue_across_processes() -> None:
    a, b = new_docker(seed=42), new_docker(seed=42)
    seq_a = [a.drv.ids.random_id() for _ in range(3)] + [a.drv.ids.link_id()]
    seq_b = [b.drv.ids.random_id() for _ in range(3)] + [b.drv.ids.link_id()]
    assert seq_a == seq_b
    assert all(re.fullmatch(r"[0-9a-f]{64}", x) and not x[:12].isdigit() for x in seq_a[:3])
    assert LINK_RE.fullmatch(seq_a[3])
    assert new_docker(seed=43).drv.ids.random_id() != seq_a[0]
    # a later process (new objects, another seed) continues the stored sequence
    nxt = a.again().drv.ids.random_id()
    assert nxt == b.drv.ids.random_id()
    assert nxt not in seq_a


def test_remove_drops_link_and_dir(dk: Docker) -> None:
    fs, drv = dk.fs, dk.drv
    drv.create("a" * 64)
    link = drv.link("a" * 64)
    assert drv.exists("a" * 64)
    drv.remove("a" * 64)
    assert not drv.exists("a" * 64)
    assert link not in fs.os.listdir(f"{HOME}/l")
    drv.remove("a" * 64)  # removing what is gone is not an error (moby)
    with pytest.raises(StorageError, match="id is empty"):
        drv.remove("")


def test_create_errors(dk: Docker) -> None:
    drv = dk.drv
    drv.create("a" * 64)
    with pytest.raises(LayerExists):
        drv.create("a" * 64)
    with pytest.raises(FileNotFoundError):
        drv.create("b" * 64, "c" * 64)
    assert not drv.exists("b" * 64)
    for bad in ("../x", "l", ".", "a/b"):
        with pytest.raises(StorageError):
            drv.create(bad)
    with pytest.raises(StorageError, match="only supported for ReadWrite"):
        drv.create("d" * 64, storage_opt={"size": "1G"})
    with pytest.raises(StorageError, match="pquota"):
        drv.create_read_write("d" * 64, storage_opt={"size": "1G"})


def test_max_depth_128_lowers(dk: Docker) -> None:
    drv = dk.drv
    prev = ""
    for i in range(129):
        lid = f"{i:064x}"
        drv.create(lid, prev or None)
        prev = lid
    assert len(drv.lower(prev)) == 128
    with pytest.raises(MaxDepthExceeded, match=r"^max depth exceeded$"):
        drv.create("f" * 64, prev)
    # as moby: the new directory is removed, the parent was marked committed all the same
    assert not drv.exists("f" * 64)
    assert dk.fs.os.path.exists(f"{HOME}/{prev}/committed")
