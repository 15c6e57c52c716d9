"""The `rignet` entry point.

`rignet --help` is answered here, without importing TensorFlow. Any other command line sets
TensorFlow's log level for this process first (off, unless `--verbose` anywhere on the line or
the user's `TF_CPP_MIN_LOG_LEVEL` says otherwise; `tensorflow_logs`), then hands the whole line
to `rignet_keras.cli.main`, which imports the library.
"""

import argparse
import sys

from rignet_cli.commands import DESCRIPTION, add_commands
from rignet_cli.tensorflow_logs import quiet_tensorflow, show_tensorflow_logs

HELP_FLAGS = ("-h", "--help")


def top_level_parser():
    parser = argparse.ArgumentParser(prog="rignet", description=DESCRIPTION)
    add_commands(parser)
    return parser


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    words = [a for a in argv if a != "--verbose"]
    if words and words[0] in HELP_FLAGS:
        top_level_parser().print_help()
        return 0
    quiet_tensorflow()
    if "--verbose" in argv:
        show_tensorflow_logs()
    from rignet_keras.cli import main as run_command

    return run_command(argv)


if __name__ == "__main__":
    sys.exit(main())
