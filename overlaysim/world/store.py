"""The world file: one SQLite database, rewritten in one transaction per save.

Why SQLite: a commit is atomic and durable on its own, so a command killed in the middle of
a save (kill -9, power cut) leaves the previous world intact. ``journal_mode=DELETE`` keeps
the committed state in the main file at all times (a rollback journal exists only while a
save runs, and the next opener rolls it back); WAL would leave committed data in a side
file that a user copying ``overlaysim.world`` alone could lose.

A file that is not ours is never written to: before the first write the ``meta`` table must
say ``format=overlaysim-world`` with a schema this code reads. A brand-new world is written
to a temporary file and renamed over the path, so there is never a half-created world file.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator

from overlaysim.errors import WorldError
from overlaysim.world import holder
from overlaysim.world.snapshot import Snapshot

FORMAT = "overlaysim-world"
SCHEMA = 2  # 2: the ``events`` table (world/eventlog.py); a schema-1 file has no log
BUSY_TIMEOUT_S = 30.0

_TABLES = {
    "meta": "key TEXT PRIMARY KEY, value TEXT NOT NULL",
    "superblocks": "id INTEGER PRIMARY KEY, fstype TEXT NOT NULL, dev INTEGER NOT NULL, "
    "next_ino INTEGER NOT NULL, magic INTEGER NOT NULL, rdonly INTEGER NOT NULL",
    "blobs": "id INTEGER PRIMARY KEY, data BLOB NOT NULL, pages TEXT",
    "inodes": "id INTEGER PRIMARY KEY, sb INTEGER NOT NULL, ino INTEGER NOT NULL, "
    "mode INTEGER NOT NULL, uid INTEGER NOT NULL, gid INTEGER NOT NULL, rdev INTEGER NOT NULL, "
    "atime INTEGER NOT NULL, mtime INTEGER NOT NULL, ctime INTEGER NOT NULL, "
    "nlink INTEGER NOT NULL, target BLOB, blob INTEGER, parent INTEGER",
    "dentries": "dir INTEGER NOT NULL, pos INTEGER NOT NULL, name BLOB NOT NULL, "
    "inode INTEGER NOT NULL, PRIMARY KEY (dir, pos)",
    "xattrs": "inode INTEGER NOT NULL, pos INTEGER NOT NULL, name BLOB NOT NULL, "
    "value BLOB NOT NULL, PRIMARY KEY (inode, pos)",
    "mounts": "pos INTEGER PRIMARY KEY, id INTEGER NOT NULL, source BLOB NOT NULL, "
    "fstype TEXT NOT NULL, options BLOB NOT NULL, data BLOB NOT NULL, rdonly INTEGER NOT NULL, "
    "root INTEGER, parent_pos INTEGER, mp_inode INTEGER, mp_path TEXT, overlay TEXT",
    "events": "seq INTEGER PRIMARY KEY, time_ns INTEGER NOT NULL, container TEXT NOT NULL, "
    "mount TEXT NOT NULL, source TEXT NOT NULL, command TEXT NOT NULL, kind TEXT NOT NULL, "
    "path TEXT NOT NULL, reason TEXT NOT NULL, detail TEXT NOT NULL",
}
#: tables added after schema 1: an older file lacks them and loads with them empty
_ADDED = {"events": 2}
_WITHOUT_ROWID = {"dentries", "xattrs"}
_COLUMNS = {"superblocks": 6, "blobs": 3, "inodes": 14, "dentries": 4, "xattrs": 4, "mounts": 12,
            "events": 10}
_ORDER = {"superblocks": "id", "blobs": "id", "inodes": "id", "dentries": "dir, pos",
          "xattrs": "inode, pos", "mounts": "pos", "events": "seq"}  # fmt: skip


def _ddl(name: str) -> str:
    tail = " STRICT, WITHOUT ROWID" if name in _WITHOUT_ROWID else " STRICT"
    return f"CREATE TABLE IF NOT EXISTS {name} ({_TABLES[name]}){tail}"


def is_absent(path: str) -> bool:
    """No world yet: no file, or an empty one (a first save killed before it began)."""
    try:
        return os.stat(path).st_size == 0 and not os.path.isdir(path)
    except FileNotFoundError:
        return True
    except OSError as e:
        raise WorldError(f"{path}: cannot read the world file ({e.strerror})") from None


def _connect(path: str, *, write: bool) -> sqlite3.Connection:
    if os.path.isdir(path):
        raise WorldError(f"{path}: is a directory, not a world file")
    if not os.path.exists(path):
        raise WorldError(f"{path}: no world file there")
    mode = "rw" if write else "ro"
    try:
        conn = sqlite3.connect(
            f"file:{_quote(os.path.abspath(path))}?mode={mode}", uri=True,
            timeout=BUSY_TIMEOUT_S, isolation_level=None,
        )  # fmt: skip
    except sqlite3.Error as e:
        raise WorldError(f"{path}: cannot open the world file ({e})") from None
    return conn


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")


def _fail(path: str, e: sqlite3.Error) -> WorldError:
    text = str(e)
    if "locked" in text or "busy" in text:
        return WorldError(f"{path}: the world file is busy (another overlaysim command holds it)")
    if "not a database" in text:
        return WorldError(f"{path}: not an overlaysim world file (not an SQLite database)")
    if "readonly" in text or "read-only" in text:
        return WorldError(f"{path}: the world file is read-only ({text})")
    return WorldError(f"{path}: corrupt world file ({text})")


def _check(conn: sqlite3.Connection, path: str) -> dict[str, str]:
    """The meta table of a file that must be one of our worlds, in a schema we read."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "meta" not in tables:
        raise WorldError(f"{path}: not an overlaysim world file (an SQLite file of another kind)")
    meta: dict[str, str] = {}
    for key, value in conn.execute("SELECT key, value FROM meta"):
        if not isinstance(key, str) or not isinstance(value, str):
            raise WorldError(f"{path}: corrupt world file (bad meta table)")
        meta[key] = value
    if meta.get("format") != FORMAT:
        raise WorldError(f"{path}: not an overlaysim world file (an SQLite file of another kind)")
    try:
        schema = int(meta.get("schema", ""))
    except ValueError:
        raise WorldError(f"{path}: corrupt world file (bad schema version)") from None
    if schema > SCHEMA:
        raise WorldError(
            f"{path}: world schema {schema} is newer than this overlaysim reads ({SCHEMA}); "
            "upgrade overlaysim"
        )
    if schema < 1:
        raise WorldError(f"{path}: corrupt world file (bad schema version {schema})")
    missing = sorted(n for n in set(_TABLES) - tables if _ADDED.get(n, 1) <= schema)
    if missing:
        raise WorldError(f"{path}: corrupt world file (missing table {missing[0]})")
    return meta


def _read(conn: sqlite3.Connection, meta: dict[str, str]) -> Snapshot:
    snap = Snapshot(state=meta)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    for name, width in _COLUMNS.items():
        if name not in tables:  # added by a later schema: an older world has none of these
            continue
        rows = conn.execute(f"SELECT * FROM {name} ORDER BY {_ORDER[name]}").fetchall()
        if rows and len(rows[0]) != width:
            raise sqlite3.DatabaseError(f"table {name} has {len(rows[0])} columns, not {width}")
        setattr(snap, name, rows)
    return snap


def _write(conn: sqlite3.Connection, snap: Snapshot, *, fresh: bool) -> None:
    """Replace every row; the caller holds the transaction."""
    for name in _TABLES:
        if fresh or name in _ADDED:  # an older world gains the tables of this schema
            conn.execute(_ddl(name))
        if not fresh:
            conn.execute(f"DELETE FROM {name}")
    meta = dict(snap.state, format=FORMAT, schema=str(SCHEMA))
    conn.executemany("INSERT INTO meta VALUES (?, ?)", sorted(meta.items()))
    for name, width in _COLUMNS.items():
        marks = ", ".join("?" * width)
        conn.executemany(f"INSERT INTO {name} VALUES ({marks})", getattr(snap, name))


def read_snapshot(path: str) -> Snapshot:
    """The rows of the world at ``path`` (read-only; a hot journal is rolled back first)."""
    conn = _connect(path, write=os.access(path, os.W_OK))
    try:
        conn.execute("BEGIN")
        meta = _check(conn, path)
        snap = _read(conn, meta)
        conn.execute("COMMIT")
        return snap
    except sqlite3.Error as e:
        raise _fail(path, e) from None
    finally:
        conn.close()


def write_new(path: str, snap: Snapshot) -> None:
    """Create a world file: written beside ``path`` and renamed over it when complete."""
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        conn = sqlite3.connect(tmp, isolation_level=None)
    except (OSError, sqlite3.Error) as e:
        raise WorldError(f"{path}: cannot create the world file ({e})") from None
    try:
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("BEGIN IMMEDIATE")
        _write(conn, snap, fresh=True)
        conn.execute("COMMIT")
        conn.close()
        os.replace(tmp, path)
    except (OSError, sqlite3.Error) as e:
        conn.close()
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise WorldError(f"{path}: cannot write the world file ({e})") from None


class Session:
    """A world file held for one command: read under a write lock, replaced on commit.

    The lock (``BEGIN IMMEDIATE``) is taken before reading, so two commands on the same world
    run one after the other instead of one silently overwriting the other's changes.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.closed = False
        holder.check(path)  # a FUSE mount holds the world until it unmounts: refuse at once
        self.conn = _connect(path, write=True)
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            self.meta = _check(self.conn, path)
        except sqlite3.Error as e:
            self.close()
            raise _fail(path, e) from None
        except WorldError:
            self.close()
            raise

    def read(self) -> Snapshot:
        try:
            return _read(self.conn, self.meta)
        except sqlite3.Error as e:
            raise _fail(self.path, e) from None

    def commit(self, snap: Snapshot) -> None:
        try:
            _write(self.conn, snap, fresh=False)
            self.conn.execute("COMMIT")
        except sqlite3.Error as e:
            raise _fail(self.path, e) from None
        finally:
            self.close()

    def close(self) -> None:
        """Roll back anything uncommitted (nothing is saved) and release the lock."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(sqlite3.Error):
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
        self.conn.close()


@contextlib.contextmanager
def session(path: str) -> Iterator[Session]:
    s = Session(path)
    try:
        yield s
    finally:
        s.close()
