"""Durable local files: whole-file replacement that is atomic, and appends that are synced.

A file replaced with :func:`write_atomic` holds either its old or its new content after a
crash or power loss at any point: the new content goes to a temporary file in the same
directory, is synced, checked by the caller's ``verify`` while still under its temporary
name, and only then renamed over the old file; the directory is synced so the rename itself
survives.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
from collections.abc import Callable
from pathlib import Path

_serial = itertools.count()


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(
    path: Path,
    data: bytes,
    *,
    mode: int = 0o644,
    verify: Callable[[bytes], None] | None = None,
) -> os.stat_result:
    """Replace ``path`` with ``data`` atomically; returns the new file's ``stat``.

    ``verify`` is called with the bytes read back from the synced temporary file and may
    raise to abandon the write (``path`` then keeps its old content). The file is created
    with ``mode`` whatever the process umask."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.{next(_serial)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if verify is not None:
            verify(tmp.read_bytes())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _sync_directory(path.parent)
    return path.stat()


def append_synced(path: Path, data: bytes) -> None:
    """Append ``data`` to ``path`` (created 0644 if missing) and sync it to disk."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def same_file(a: os.stat_result, b: os.stat_result) -> bool:
    """Whether two ``stat`` results describe the same unchanged file."""
    return (a.st_ino, a.st_dev, a.st_size, a.st_mtime_ns) == (
        b.st_ino,
        b.st_dev,
        b.st_size,
        b.st_mtime_ns,
    )


__all__ = ["append_synced", "same_file", "write_atomic"]
