"""Atomic writes: an export is built in a temporary sibling and moved into place with `os.replace`.

A failed or interrupted export therefore never leaves a file or folder at the final path that
looks finished; the temporary sibling (named `.<name>.partial-*`) is removed on failure.
"""

import contextlib
import os
import shutil
import tempfile


def _partial_name(path):
    return f".{os.path.basename(os.path.normpath(path))}.partial-"


@contextlib.contextmanager
def atomic_directory(path, overwrite=False):
    """Yields a temporary folder that becomes `path` when the block ends without an exception.

    Args:
        path: the final folder.
        overwrite: replace an existing `path`; otherwise an existing `path` is an error.

    Raises:
        FileExistsError: `path` exists and `overwrite` is False.
    """
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path!r} already exists; pass overwrite=True (--overwrite)")
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=_partial_name(path), dir=parent)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if os.path.exists(path):
        if not os.path.isdir(path):
            shutil.rmtree(tmp, ignore_errors=True)
            raise FileExistsError(f"{path!r} exists and is not a folder")
        old = tempfile.mkdtemp(prefix=_partial_name(path) + "old-", dir=parent)
        os.replace(path, os.path.join(old, "previous"))
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def atomic_write_bytes(path, data):
    """Writes `data` to `path` through a temporary sibling file and `os.replace`."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=_partial_name(path), dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
