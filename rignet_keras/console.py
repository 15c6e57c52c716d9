"""What every command shares: exit statuses, the one-line usage error, how paths are shown, and
`report_errors`, which turns a user's error into one line and an exit status (no traceback).

It sits with the configuration, below training and the commands: `rignet`, the quickstart, the
recipes and `rignet_keras.training.experiment` all print and exit through it.
"""

import argparse
import os
import sys

# Exit statuses of the commands.
EXIT_USER_ERROR = 2
EXIT_RUN_FAILED = 1


class UsageError(ValueError):
    """A flag's value the command cannot use; the message names the flag and the value."""


class OneLineParser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one line (`error: ...`), exit status 2."""

    def error(self, message):
        self.exit(EXIT_USER_ERROR, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def shown_path(path):
    """`path` as messages show it: relative to the working folder when it lies under it, else as
    it is (None or "" unchanged)."""
    if not path:
        return path
    relative = os.path.relpath(path)
    return path if relative.startswith(os.pardir) else relative


def check_at_least(flag, value, low):
    """Raises `UsageError` naming `flag` when `value` (None: not given) is below `low`."""
    if value is not None and value < low:
        raise UsageError(f"{flag} must be at least {low}; received {value}")
    return value


def _user_errors():
    """The exception types that are the user's to fix: one line, exit status 2 (the data
    layer's `DatasetError`, the runtime's `RunnerError` and `ConfigError` are `ValueError`s)."""
    return (
        ValueError,
        FileNotFoundError,
        NotADirectoryError,
        IsADirectoryError,
        PermissionError,
        FileExistsError,
    )


def _one_line(error):
    return " ".join(str(error).split()) or type(error).__name__


def report_errors(command):
    """Runs `command()` and returns its exit status; a user error is printed as one line with
    status 2, a failed run (training stopped on a NaN or an infinity: a `FloatingPointError`,
    the trainer's `NonFiniteTrainingError`) as one line with status 1; no traceback."""
    try:
        return command()
    except FloatingPointError as error:
        print(f"error: {_one_line(error)}", file=sys.stderr)
        return EXIT_RUN_FAILED
    except _user_errors() as error:
        print(f"error: {_one_line(error)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        inner = _user_error_inside(error)
        if inner is None:
            raise
        print(f"error: {_one_line(inner)}", file=sys.stderr)
        return EXIT_USER_ERROR


def _user_error_inside(error):
    """The user's error that a TensorFlow op error carries (a bad sample found by `tf.data`,
    whose reader raised a `DatasetError`), or None."""
    tf = sys.modules.get("tensorflow")
    if tf is None or not isinstance(error, tf.errors.OpError):
        return None
    from rignet_keras.data import dataset_error_from

    return dataset_error_from(error)
