"""A world file that is not what it claims: one-line WorldError naming it, file untouched."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable

import pytest

from overlaysim.errors import OverlaySimError, WorldError
from overlaysim.world import World, load_world, open_world, save_world
from tests.world.helpers import build_rich, read_bytes


@pytest.fixture
def path(tmp_path: object) -> str:
    return os.path.join(str(tmp_path), "corrupt.world")


def _good(path: str) -> None:
    w = World.new()
    for i in range(40):  # several pages, so that truncation cuts real data
        with w.fs.open(f"/root/f{i}", "wb") as f:
            f.write(os.urandom(3000))
    save_world(w, path)


def _expect_refused(path: str, match: str) -> None:
    before = read_bytes(path) if os.path.isfile(path) else None
    for attempt in (
        lambda: load_world(path),
        lambda: open_world(path).__enter__(),
        lambda: save_world(World.new(), path),
    ):
        with pytest.raises(WorldError, match=match) as info:
            attempt()
        message = str(info.value)
        assert "\n" not in message and path in message
        assert isinstance(info.value, OverlaySimError)
    if before is not None:
        assert read_bytes(path) == before
    assert not os.path.exists(path + "-journal")


def test_random_bytes(path: str) -> None:
    with open(path, "wb") as f:
        f.write(os.urandom(8192))
    _expect_refused(path, "not an overlaysim world file")


def test_text_file(path: str) -> None:
    with open(path, "w") as f:
        f.write("lowerdir=/a\n")
    _expect_refused(path, "not an overlaysim world file")


def test_truncated_sqlite(path: str) -> None:
    _good(path)
    data = read_bytes(path)
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])
    _expect_refused(path, "corrupt world file")


def test_sqlite_of_another_kind(path: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
    conn.execute("INSERT INTO notes VALUES (1, 'mine')")
    conn.commit()
    conn.close()
    _expect_refused(path, "SQLite file of another kind")


def test_sqlite_with_a_foreign_meta_table(path: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    conn.execute("INSERT INTO meta VALUES ('format', 'something-else')")
    conn.commit()
    conn.close()
    _expect_refused(path, "another kind")


def _edit(path: str, *sql: str) -> None:
    conn = sqlite3.connect(path)
    for statement in sql:
        conn.execute(statement)
    conn.commit()
    conn.close()


def test_newer_schema(path: str) -> None:
    _good(path)
    _edit(path, "UPDATE meta SET value = '99' WHERE key = 'schema'")
    _expect_refused(path, "schema 99 is newer")


def test_bad_schema(path: str) -> None:
    _good(path)
    _edit(path, "UPDATE meta SET value = 'one' WHERE key = 'schema'")
    _expect_refused(path, "bad schema version")


def test_directory(tmp_path: object) -> None:
    with pytest.raises(WorldError, match="is a directory"):
        load_world(str(tmp_path))
    with pytest.raises(WorldError, match="is a directory"), open_world(str(tmp_path)):
        pass
    with pytest.raises(WorldError, match="is a directory"):
        save_world(World.new(), str(tmp_path))


def test_missing_folder(tmp_path: object) -> None:
    where = os.path.join(str(tmp_path), "no", "such", "dir", "x.world")
    with pytest.raises(WorldError, match="cannot create"):
        save_world(World.new(), where)


# --- hostile rows: a valid SQLite world whose content lies ----------------------------------
def _root_dir_id(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT root FROM mounts WHERE pos = 0").fetchone()[0])


HOSTILE: dict[str, Callable[[sqlite3.Connection], object]] = {
    "a name with a slash": lambda c: c.execute(
        "UPDATE dentries SET name = CAST('a/b' AS BLOB) WHERE pos = 0"
    ),
    "a dot name": lambda c: c.execute(
        "UPDATE dentries SET name = CAST('..' AS BLOB) WHERE pos = 0"
    ),
    "a dangling entry": lambda c: c.execute("UPDATE dentries SET inode = 999999 WHERE pos = 0"),
    "the root listed in itself": lambda c: c.execute(
        "INSERT INTO dentries VALUES (?, 1000, CAST('loop' AS BLOB), ?)",
        (_root_dir_id(c), _root_dir_id(c)),
    ),
    "a directory cycle": lambda c: c.execute(
        "UPDATE inodes SET parent = id WHERE id = (SELECT inode FROM dentries d JOIN inodes i "
        "ON i.id = d.inode WHERE i.mode >= 16384 AND i.mode < 20480 LIMIT 1)"
    ),
    "a file type that does not exist": lambda c: c.execute(
        "UPDATE inodes SET mode = 61440 WHERE id = (SELECT MAX(id) FROM inodes)"
    ),
    "a regular file without data": lambda c: c.execute("DELETE FROM blobs"),
    "a mount over a missing directory": lambda c: c.execute(
        "UPDATE mounts SET mp_inode = 424242 WHERE pos = 1"
    ),
    "no root mount": lambda c: c.execute("DELETE FROM mounts WHERE pos = 0"),
    "a broken clock": lambda c: c.execute(
        "UPDATE meta SET value = '{\"kind\": \"x\"}' WHERE key = 'clock'"
    ),
    "meta that is not an object": lambda c: c.execute(
        "UPDATE meta SET value = '[1]' WHERE key = 'meta'"
    ),
    "overlay state that is not JSON": lambda c: c.execute(
        "UPDATE mounts SET overlay = '{' WHERE overlay IS NOT NULL"
    ),
    "a dropped table": lambda c: c.execute("DROP TABLE xattrs"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_rows(path: str, case: str) -> None:
    save_world(build_rich(), path)
    conn = sqlite3.connect(path)
    HOSTILE[case](conn)
    conn.commit()
    conn.close()
    before = read_bytes(path)
    with pytest.raises(WorldError, match="corrupt world file") as info:
        load_world(path)
    assert "\n" not in str(info.value)
    assert read_bytes(path) == before


def test_hostile_rows_cannot_loop_a_walk(path: str) -> None:
    """A directory named twice (a hard-linked directory) would make walks endless."""
    w = World.new()
    w.fs.os.mkdir("/etc/a")
    save_world(w, path)
    conn = sqlite3.connect(path)
    (a_id,) = conn.execute("SELECT inode FROM dentries WHERE name = CAST('a' AS BLOB)").fetchone()
    conn.execute("INSERT INTO dentries VALUES (?, 0, CAST('again' AS BLOB), ?)", (a_id, a_id))
    conn.commit()
    conn.close()
    with pytest.raises(WorldError, match="corrupt world file"):
        load_world(path)


def test_values_are_never_code(path: str) -> None:
    """The meta JSON is data: a world cannot smuggle objects in (no pickle anywhere)."""
    _good(path)
    payload = json.dumps({"__reduce__": "os.system", "args": ["touch /tmp/pwned"]})
    _edit(path, f"UPDATE meta SET value = '{payload}' WHERE key = 'meta'")
    w = load_world(path)
    assert w.meta == json.loads(payload)


def test_a_cycle_of_directories_is_refused(path: str) -> None:
    w = World.new()
    w.fs.os.mkdir("/etc/a")
    w.fs.os.mkdir("/etc/b")
    save_world(w, path)
    conn = sqlite3.connect(path)
    ids = dict(
        conn.execute(
            "SELECT CAST(name AS TEXT), inode FROM dentries WHERE name IN "
            "(CAST('a' AS BLOB), CAST('b' AS BLOB))"
        ).fetchall()
    )
    a, b = ids["a"], ids["b"]
    conn.execute("DELETE FROM dentries WHERE inode IN (?, ?)", (a, b))
    conn.execute("INSERT INTO dentries VALUES (?, 0, CAST('b' AS BLOB), ?)", (a, b))
    conn.execute("INSERT INTO dentries VALUES (?, 0, CAST('a' AS BLOB), ?)", (b, a))
    conn.execute("UPDATE inodes SET parent = ? WHERE id = ?", (b, a))
    conn.execute("UPDATE inodes SET parent = ? WHERE id = ?", (a, b))
    conn.commit()
    conn.close()
    with pytest.raises(WorldError, match="cycle"):
        load_world(path)
