"""The `rignet` command's sub-commands and top-level parser, shared by the launcher (whose
`--help` imports no TensorFlow) and by `rignet_keras.cli` (which adds each command's flags)."""

DESCRIPTION = "The `rignet` command: train, evaluate, predict, quickstart and the data commands."

# Sub-command -> its one-line summary, in the order `--help` lists them.
COMMANDS = {
    "train": "train and evaluate a run (a recipe, a config, flags)",
    "evaluate": "evaluate a run or a saved model for every ui",
    "predict": "segment images; palette PNG + overlay per image",
    "quickstart": "train and compare a small RIGNet on synthetic data",
    "data": "dataset commands (download, prepare, ...)",
}
# The commands that parse their own flags (everything after the name is forwarded).
FORWARDING = ("quickstart", "data")


def add_verbose_argument(parser):
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's log lines")
    return parser


def add_commands(parser):
    """Adds `--verbose` and the sub-commands to `parser` (an `argparse.ArgumentParser`, `prog`
    "rignet"); returns {command: its sub-parser}."""
    add_verbose_argument(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    return {
        name: sub.add_parser(name, help=summary, add_help=name not in FORWARDING)
        for name, summary in COMMANDS.items()
    }
