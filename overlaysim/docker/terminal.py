"""The command line's side of the terminal and the real disk for docker/skopeo commands:
progress bars, what a container reads as stdin, and output files that appear whole."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from overlaysim.errors import DaemonError


@contextmanager
def progress(enabled: bool) -> Iterator[Callable[[str, str, int, int], None] | None]:
    """rich progress bars on stderr (only on a terminal, like docker's own bars)."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    tasks: dict[str, Any] = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        console=Console(stderr=True),
        transient=False,
    ) as bar:

        def update(what: str, ident: str, done: int, total: int) -> None:
            if ident not in tasks:
                tasks[ident] = bar.add_task(f"{ident}: {what}", total=max(total, 1))
            bar.update(tasks[ident], completed=done, total=max(total, 1))

        yield update


def container_stdin(interactive: bool) -> tuple[bytes, Callable[[], str] | None]:
    """What a container process reads: a terminal line by line, else all of stdin."""
    if not interactive:
        return b"", None
    if sys.stdin.isatty():
        return b"", sys.stdin.readline
    return sys.stdin.buffer.read(), None


@contextmanager
def new_file(path: str) -> Iterator[Any]:
    """A file on the real disk that appears complete or not at all."""
    tmp = f"{path}.overlaysim-tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@contextmanager
def output_file(path: str | None) -> Iterator[Any]:
    """``-o PATH`` (written whole or not at all), else stdout unless it is a terminal."""
    if path is not None:
        with new_file(path) as f:
            yield f
        return
    if sys.stdout.isatty():
        raise DaemonError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    out = sys.stdout.buffer
    yield out
    out.flush()


@contextmanager
def input_file(path: str | None) -> Iterator[str]:
    """``-i PATH``, else stdin copied to a temporary file (archives are read by offset)."""
    if path is not None:
        yield path
        return
    if sys.stdin.isatty():
        raise DaemonError("requested load from stdin, but stdin is empty")
    with tempfile.NamedTemporaryFile(prefix="overlaysim-load-", suffix=".tar") as tmp:
        shutil.copyfileobj(sys.stdin.buffer, tmp)
        tmp.flush()
        if tmp.tell() == 0:
            raise DaemonError("requested load from stdin, but stdin is empty")
        yield tmp.name
