"""The project's one atomic file writer: a file appears whole at its final path or not at all.

Every writer in the package (checkpoints, histories, run configurations, exports' files, dataset
records, device manifests, the XNNPACK cache) goes through `replacing`: the content is written to
a temporary sibling, flushed to disk, given the mode a plain `open` would give it
(`file_modes.apply_umask`, not `tempfile`'s 0600) and moved onto the final path with `os.replace`.
A failure removes the temporary file and leaves the previous file untouched; a process killed
partway leaves at most a temporary sibling whose name starts with `prefix`, which the writer's
owner may clean up (`training.checkpoints.remove_stale_files` does for run folders).

It lives in the runtime because the runtime must run without TensorFlow; everything above imports
it from here.
"""

import contextlib
import json
import os
import tempfile

from .file_modes import apply_umask


def _sync_folder(folder):
    """Flushes `folder`'s entry list, so the rename itself survives a power loss (POSIX)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def replacing(path, *, prefix=None, suffix=""):
    """Yields a temporary path beside `path`; when the block ends without an error the temporary
    file replaces `path` atomically, otherwise it is removed and `path` is left as it was.

    Args:
        path: the final file (str or path-like); its folder is created if missing.
        prefix: the temporary file's name prefix; default `.<name>.`.
        suffix: the temporary file's suffix (some writers choose the format by it: `.keras`).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    if prefix is None:
        prefix = f".{os.path.basename(path)}."
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as written:
            os.fsync(written.fileno())
        apply_umask(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    _sync_folder(folder)


def write_bytes(path, data, *, prefix=None, suffix=""):
    """Writes `data` (bytes) to `path` atomically; returns `path`."""
    with replacing(path, prefix=prefix, suffix=suffix) as tmp, open(tmp, "wb") as f:
        f.write(data)
    return path


def write_text(path, text, *, prefix=None, suffix=""):
    """Writes `text` (UTF-8, newlines as given) to `path` atomically; returns `path`."""
    return write_bytes(path, text.encode("utf-8"), prefix=prefix, suffix=suffix)


def write_json(path, obj, *, indent=2, sort_keys=False, prefix=None, suffix=""):
    """Writes `obj` as JSON (with a final newline) to `path` atomically; returns `path`."""
    text = json.dumps(obj, indent=indent, sort_keys=sort_keys) + "\n"
    return write_text(path, text, prefix=prefix, suffix=suffix)
