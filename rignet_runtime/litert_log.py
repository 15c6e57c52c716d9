"""LiteRT's native log on stderr: captured around the calls that write it.

LiteRT's C++ logger writes to file descriptor 2, out of Python's reach, and has no severity
setting in `ai_edge_litert`'s Python API. The runtime captures the descriptor around the calls
that log (creating and first allocating an interpreter, loading and releasing a
`CompiledModel`), then restores it: `quietly` returns what was written, `without_routine_lines`
writes it back less the INFO lines that every run prints and that say nothing the runner does
not ("Created TensorFlow Lite XNNPACK delegate for CPU.", the "DestroyAccelerator" lines of a
released `CompiledModel`). Every other line (warnings, errors) still reaches stderr.

One routine pair no capture reaches: a `CompiledModel`'s tensor buffers, once written, make LiteRT
create a second, process-wide environment in C++, released by the C++ runtime after Python has
finished; its release prints two "DestroyAccelerator" lines. `exit_status` is for a command's
last line: it silences descriptor 2 once the command has said everything.
"""

import os
import re
import sys
import tempfile

# LiteRT's INFO lines that every load or release prints.
ROUTINE_LINES = (
    re.compile(r"^INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.$"),
    re.compile(r"^INFO: \[accelerator_registry\.cc:\d+\] DestroyAccelerator: "),
)


def quietly(call):
    """Runs `call()` with file descriptor 2 (stderr) sent to a temporary file.

    Returns:
        (what `call()` returned, the captured text). When `call()` raises, the exception gets
        the captured text as `litert_log`.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable stderr: nothing to hide
        return call(), ""
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            result = call()
        except BaseException as error:
            error.litert_log = _read(captured, saved)
            raise
        text = _read(captured, saved)
    return result, text


def _read(captured, saved):
    """Restores stderr from `saved` and returns what went to `captured`."""
    os.dup2(saved, 2)
    os.close(saved)
    captured.seek(0)
    return captured.read().decode("utf-8", "replace")


def unroutine(text):
    """`text` without LiteRT's routine INFO lines."""
    return "".join(
        line
        for line in text.splitlines(keepends=True)
        if not any(pattern.match(line.rstrip("\n")) for pattern in ROUTINE_LINES)
    )


def without_routine_lines(call):
    """`call()` with stderr captured; what it wrote goes back to stderr, less the routine INFO
    lines (also when `call()` raises)."""
    try:
        result, text = quietly(call)
    except BaseException as error:
        _write(unroutine(getattr(error, "litert_log", "")))
        raise
    _write(unroutine(text))
    return result


def exit_status(status):
    """`status`, after flushing stdout and stderr and pointing descriptor 2 at the null device.

    For a command's entry point only (`sys.exit(exit_status(main()))`), never for a library
    call: whatever native code writes to descriptor 2 after this (LiteRT's release of its
    process-wide environment at exit) is discarded.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    try:
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return status
    try:
        os.dup2(null, 2)
    except OSError:
        pass
    finally:
        os.close(null)
    return status


def _write(text):
    if text:
        sys.stderr.write(text)
        sys.stderr.flush()
