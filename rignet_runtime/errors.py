"""The runtime's one error type."""


class RunnerError(ValueError):
    """A user-facing error: bad model, bad manifest, bad image, bad option.

    The message is one line that names the culprit (file, flag, key or value); the command
    line prints it and exits with status 2.
    """
