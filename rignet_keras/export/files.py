"""Atomic folders: an export is built in a temporary sibling and moved into place with `os.replace`.

A failed export never leaves a file or folder at the final path that looks finished: the
temporary sibling (named `.<name>.partial-<pid>-*`) is removed on failure. A process killed
partway (SIGKILL, power loss) cannot remove its own; the next export to the same path removes
every sibling whose process is gone, and puts a previous export folder back if the kill fell
between moving it aside and moving the new one in. So the final path holds the previous export
whole, the new one whole, or nothing.

Folders get the mode the process's umask gives (0755 under the usual 022), not the 0700 of
`tempfile`. Single files (`atomic_write_bytes`: the manifest, each converted graph) are written
by the package's one file writer, `rignet_runtime.atomic`, which does the same for files.
"""

import contextlib
import json
import os
import re
import shutil
import tempfile

from rignet_runtime.atomic import write_bytes
from rignet_runtime.file_modes import apply_umask
from rignet_runtime.wire import MANIFEST_FORMAT, MANIFEST_NAME

PARTIAL_MARK = ".partial-"
OLD_MARK = "old-"
PREVIOUS = "previous"


def _partial_name(path):
    return f".{os.path.basename(os.path.normpath(path))}{PARTIAL_MARK}"


def _own_prefix(path):
    return f"{_partial_name(path)}{os.getpid()}-"


def _process_alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_partials(path):
    """Removes the temporary siblings of `path` left by exports whose process is gone.

    A sibling holding a moved-aside previous export (`.<name>.partial-<pid>-old-*/previous`) is
    moved back to `path` if `path` does not exist (the kill fell between the two moves).

    Returns:
        The names removed (restored ones included).
    """
    path = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path)
    prefix = _partial_name(path)
    pattern = re.compile(re.escape(prefix) + r"(\d+)-")
    removed = []
    try:
        names = sorted(os.listdir(parent))
    except FileNotFoundError:
        return removed
    for name in names:
        if not name.startswith(prefix):
            continue
        match = pattern.match(name)
        if match and _process_alive(int(match.group(1))):
            continue  # an export still running
        stale = os.path.join(parent, name)
        previous = os.path.join(stale, PREVIOUS)
        moved_aside = match is not None and name[match.end() :].startswith(OLD_MARK)
        if moved_aside and os.path.isdir(previous) and not os.path.exists(path):
            os.replace(previous, path)
        if os.path.isdir(stale):
            shutil.rmtree(stale, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.remove(stale)
        removed.append(name)
    return removed


def unreplaceable_reason(path, is_previous_output):
    """Why the existing folder `path` must not be replaced by a new output, or None if it may.

    Only a previous output of the same kind may be replaced: `is_previous_output(path)` returns
    None for such a folder and otherwise a short description of what it found. The working
    folder, any folder above it, the home folder and the file-system root are never replaced.
    """
    if not os.path.isdir(path):
        return "it is not a folder"
    real = os.path.realpath(path)
    cwd = os.path.realpath(os.getcwd())
    if real == cwd or cwd.startswith(real.rstrip(os.sep) + os.sep):
        return "it is the working folder or holds it"
    if real in (os.path.realpath(os.path.expanduser("~")), os.path.abspath(os.sep)):
        return "it is the home folder or the file-system root"
    return is_previous_output(path)


@contextlib.contextmanager
def atomic_directory(path, overwrite=False, is_previous_output=None):
    """Yields a temporary folder that becomes `path` when the block ends without an exception.

    Stale temporary siblings of earlier, killed exports are removed first
    (`remove_stale_partials`).

    Args:
        path: the final folder.
        overwrite: replace an existing `path`, if it is a previous output of the same kind
            (`is_previous_output`); otherwise an existing `path` is an error.
        is_previous_output: `folder -> None | str`: None when `folder` is a previous output
            that `overwrite` may replace, else what it found there (see
            `unreplaceable_reason`). Required with `overwrite`.

    Raises:
        FileExistsError: `path` exists and `overwrite` is False, or it is not a previous
            output of the same kind (the message says what it found); nothing is touched.
    """
    path = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    remove_stale_partials(path)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path!r} already exists; pass overwrite=True (--overwrite)")
    if os.path.exists(path):
        if is_previous_output is None:
            raise ValueError("atomic_directory(overwrite=True) needs is_previous_output")
        reason = unreplaceable_reason(path, is_previous_output)
        if reason is not None:
            raise FileExistsError(
                f"{path!r} exists and is not a previous export ({reason}); --overwrite only "
                "replaces a folder an export wrote: choose a new output folder"
            )
    tmp = tempfile.mkdtemp(prefix=_own_prefix(path), dir=parent)
    try:
        apply_umask(tmp)
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if os.path.exists(path):
        old = tempfile.mkdtemp(prefix=_own_prefix(path) + OLD_MARK, dir=parent)
        os.replace(path, os.path.join(old, PREVIOUS))
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def previous_export_reason(folder):
    """None when `folder` is a previous export (a readable `manifest.json` of this format, and
    nothing in the folder that its artifacts do not name), else what was found instead."""
    path = os.path.join(folder, MANIFEST_NAME)
    try:
        with open(path) as f:
            manifest = json.load(f)
    except FileNotFoundError:
        return f"no {MANIFEST_NAME}"
    except (OSError, ValueError) as error:
        return f"{MANIFEST_NAME} is unreadable: {error}"
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        return f"{MANIFEST_NAME} is not an export manifest"
    named = {MANIFEST_NAME}
    for artifact in manifest.get("artifacts") or []:
        if isinstance(artifact, dict) and isinstance(artifact.get("file"), str):
            named.add(artifact["file"].replace("\\", "/").split("/")[0])
    foreign = sorted(set(os.listdir(folder)) - named)
    if foreign:
        shown = ", ".join(foreign[:3]) + (
            f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        )
        return f"it holds {shown}, which the export did not write"
    return None


SAVED_MODEL_ENTRIES = {"saved_model.pb", "variables", "assets", "fingerprint.pb"}


def previous_saved_model_reason(folder):
    """None when `folder` is a previous SavedModel (`saved_model.pb` and SavedModel entries
    only), else what was found instead."""
    entries = set(os.listdir(folder))
    if "saved_model.pb" not in entries:
        return "no saved_model.pb"
    foreign = sorted(entries - SAVED_MODEL_ENTRIES)
    if foreign:
        return f"it holds {', '.join(foreign[:3])}, which a SavedModel does not"
    return None


def atomic_write_bytes(path, data):
    """Writes `data` to `path` atomically with the package's one file writer
    (`rignet_runtime.atomic.write_bytes`), its temporary sibling named like an export's
    (`.<name>.partial-<pid>-*`)."""
    path = os.fspath(path)
    write_bytes(path, data, prefix=_own_prefix(path))
