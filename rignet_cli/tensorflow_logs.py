"""TensorFlow's C++ log lines, for the commands: off unless asked for.

A command's choice, never the library's: importing `rignet_keras` leaves the process's
environment and descriptors alone. A command calls `quiet_tensorflow()` first thing: unless the
user set `TF_CPP_MIN_LOG_LEVEL`, it sets it to "3" in the command's own process (CUDA probing,
CPU features, the `E0000 ... CUDA error` of a machine without a GPU are off), and the lines
TensorFlow prints while it is imported, before that setting applies, are held back (written
out if the import fails). `--verbose` turns them on again (`show_tensorflow_logs`, before
TensorFlow is imported); a value the user set wins over both.
"""

import os
import sys
import tempfile

from rignet_cli.import_hooks import ImportHooks

TF_LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL"
QUIET_LEVEL = "3"

# The user's own setting, read at the first `quiet_tensorflow()` (None when unset).
_user_level = None
_quieted = False


def quiet_tensorflow():
    """For a command's start, before TensorFlow is imported: its log lines off (see the module
    docstring). Calling it again does nothing."""
    global _user_level, _quieted
    if _quieted:
        return
    _quieted = True
    _user_level = os.environ.get(TF_LOG_LEVEL)
    os.environ.setdefault(TF_LOG_LEVEL, QUIET_LEVEL)
    if "tensorflow" not in sys.modules:
        ImportHooks({"tensorflow": _hold_import_lines}).install()


def show_tensorflow_logs():
    """Turns TensorFlow's log lines back on (`--verbose`), unless the user set
    `TF_CPP_MIN_LOG_LEVEL`; call it before TensorFlow is imported."""
    if _user_level is None:
        os.environ[TF_LOG_LEVEL] = "0"


def start_up_lines_hidden():
    """Whether the log threshold hides warnings (>= 2), hence TensorFlow's import-time lines."""
    level = os.environ.get(TF_LOG_LEVEL, "0").strip()
    return level.isdigit() and int(level) >= 2


def _hold_import_lines(execute):
    """Runs TensorFlow's import with file descriptor 2 held in a temporary file (its C++
    start-up lines precede any log setting); the held text is written out if the import fails."""
    if not start_up_lines_hidden():
        return execute()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            execute()
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            os.write(2, held.read())
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
