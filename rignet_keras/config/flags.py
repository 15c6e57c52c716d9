"""The command line's aliases of `--set section.key=value` (`rignet train`, the recipes).

Each flag of `OVERRIDE_FLAGS` is one configuration field (`rignet_keras.config`) with its own
parser: `--steps 100` is `--set train.steps=100`, `--feedback-blocks 4` is
`--set model.feedback_blocks=[4,6]`. `add_override_arguments` puts them on a parser and
`overrides_from_args` turns parsed arguments back into (key, value) overrides, the aliases
first, then `--set`; two flags that set the same key are refused, naming both.
"""

import argparse

from rignet_keras.config.errors import ConfigError
from rignet_keras.config.overrides import check_recipe_overrides, parse_assignment


def _blocks(text):
    """ "4" -> (4, 6); "1,6" or "6..1" -> (1, 6); "none" -> None."""
    if text in ("none", "None"):
        return None
    try:
        parts = [int(v) for v in text.replace("..", ",").split(",")]
    except ValueError:
        raise ConfigError(
            f"--feedback-blocks must be k, 'a,b' or none; received {text!r}"
        ) from None
    return (min(parts), 6) if len(parts) == 1 else (min(parts), max(parts))


def _ui_range(text):
    """ "K" -> (1, K); "lo,hi" -> (lo, hi): the ui range of random-ui training."""
    try:
        parts = [int(v) for v in text.split(",")]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2):
        raise argparse.ArgumentTypeError(
            f"--random-ui must be K (for 1..K) or lo,hi; received {text!r}"
        )
    return (1, parts[0]) if len(parts) == 1 else tuple(parts)


def floats(text, flag="--scales", error=ConfigError):
    """ "0.75,1,1.25" -> (0.75, 1.0, 1.25); `error` naming `flag` when a part is not a number."""
    try:
        return tuple(float(s) for s in text.split(","))
    except ValueError:
        raise error(f"{flag} must be comma-separated numbers; received {text!r}") from None


def _optional_name(text):
    return None if text in ("none", "None") else text


# (flag, key, argparse type or "flag" for a switch, help). Each flag is `--set key=value`.
OVERRIDE_FLAGS = (
    ("--backbone", "model.backbone", str, "backbone name (e.g. resnet18 for a smoke test)"),
    ("--backbone-weights", "model.backbone_weights", _optional_name, "'imagenet', a path, none"),
    ("--unroll-mode", "model.unroll_mode", str, "sequential, parallel, multi_range, network_*"),
    (
        "--feedback-blocks",
        "model.feedback_blocks",
        _blocks,
        "first gated block (4 for <6..4>), 'a,b', or none",
    ),
    ("--iterations", "model.num_iterations", int, "ui"),
    ("--output-stride", "model.output_stride", int, "32, 16 or 8"),
    ("--gate-pooling", "model.gate_pooling", _optional_name, "avg, max or none"),
    ("--gate-combine", "model.gate_combine", str, "mul_sigmoid, mul_tanh or add_relu"),
    ("--sync-batch-norm", "model.sync_batch_norm", "flag", "synchronised batch norm (multi-GPU)"),
    (
        "--recurrent-batch-norm",
        "model.recurrent_batch_norm",
        str,
        "gated_passes, first_pass or every_pass",
    ),
    ("--source", "data.source", str, "training dataset"),
    ("--eval-source", "data.eval_source", str, "evaluation dataset (default: the source)"),
    ("--eval-split", "data.eval_split", str, "evaluation split"),
    ("--data-dir", "data.data_dir", str, "dataset folder (default $RIGNET_DATA_DIR)"),
    ("--crop-size", "data.crop_size", int, "training crop side"),
    ("--eval-batch-size", "data.eval_batch_size", int, "evaluation batch size"),
    ("--eval-size", "data.eval_size", lambda t: (int(t), int(t)), "evaluation pad/resize side"),
    ("--num-train-samples", "data.num_train_samples", int, "use the first N training samples"),
    ("--num-eval-samples", "data.num_eval_samples", int, "evaluate the first N samples"),
    ("--on-bad-sample", "data.on_bad_sample", str, "raise or skip"),
    ("--batch-size", "train.batch_size", int, "global batch size"),
    ("--steps", "train.steps", int, "total training steps"),
    ("--steps-per-epoch", "train.steps_per_epoch", int, "steps between validations"),
    ("--save-freq", "train.save_freq", int, "steps between resume backups"),
    ("--lr", "train.learning_rate", float, "base learning rate"),
    ("--weight-decay", "train.weight_decay", float, "L2 coefficient"),
    ("--warmup-steps", "train.warmup_steps", int, "linear warm-up steps"),
    ("--backbone-lr-multiplier", "train.backbone_lr_multiplier", float, "B1-B5 rate factor"),
    (
        "--random-ui",
        "train.train_iterations",
        _ui_range,
        "K or lo,hi: ui drawn per step from 1..K (or lo..hi)",
    ),
    ("--recompute", "train.recompute", "flag", "recompute the gated blocks"),
    ("--mixed-precision", "train.mixed_precision", "flag", "mixed_float16 / bfloat16"),
    ("--strategy", "train.strategy", str, "auto, default, one_device, mirrored, multi_worker"),
    ("--seed", "train.seed", int, "seed of weights, data order and random ui"),
    ("--deterministic", "train.deterministic", "flag", "bit-equal runs (slower)"),
    ("--flip", "eval.flip", "flag", "flip testing"),
    ("--scales", "eval.scales", floats, "multi-scale testing, e.g. 0.75,1,1.25"),
    ("--num-visualize", "eval.num_visualize", int, "images to draw (0 for none)"),
)


def _dest(flag):
    return "override_" + flag.lstrip("-").replace("-", "_")


def add_set_argument(parser, help, dest="overrides", metavar="SECTION.KEY=VALUE"):
    """Adds `--set SECTION.KEY=VALUE ...` (repeatable) to `parser`: parsed later with
    `parse_assignment`, checked by `RunConfig.override` or `check_value`."""
    parser.add_argument(
        "--set", dest=dest, action="append", default=[], nargs="+", metavar=metavar, help=help
    )


def add_override_arguments(parser):
    """Adds `--set section.key=value` and its aliases (`OVERRIDE_FLAGS`, plus
    `--deep-supervision`) to an argparse parser."""
    add_set_argument(
        parser,
        "override any configuration field, e.g. --set train.steps=100 model.backbone=resnet18",
        dest="override_set",
    )
    for flag, key, kind, text in OVERRIDE_FLAGS:
        if kind == "flag":
            parser.add_argument(flag, dest=_dest(flag), action="store_true", help=f"{text} ({key})")
        else:  # absent flags leave no attribute, so that "none" (None) is an override too
            parser.add_argument(
                flag,
                dest=_dest(flag),
                type=kind,
                default=argparse.SUPPRESS,
                metavar=key.split(".")[1].upper(),
                help=f"{text} ({key})",
            )
    parser.add_argument(
        "--deep-supervision",
        dest="override_deep_supervision",
        metavar="WEIGHTS",
        help="uniform or linear: a loss on every iteration (train.iteration_loss_weights, "
        "model.return_all_iterations)",
    )
    return parser


def overrides_from_args(args):
    """The (key, value) overrides of parsed arguments, the aliases first, then `--set`.

    Raises:
        ConfigError: naming both, when two flags set the same key (`--source` and
            `--set data.source=...`, or one `--set` key twice): neither silently wins.
    """
    given = []  # (key, value, the flag that set it)
    for flag, key, kind, _ in OVERRIDE_FLAGS:
        if kind == "flag":
            if getattr(args, _dest(flag), False):
                given.append((key, True, flag))
        elif hasattr(args, _dest(flag)):
            given.append((key, getattr(args, _dest(flag)), f"{flag} {getattr(args, _dest(flag))}"))
    weights = getattr(args, "override_deep_supervision", None)
    if weights:
        flag = f"--deep-supervision {weights}"
        given += [("train.iteration_loss_weights", weights, flag)]
        given += [("model.return_all_iterations", True, flag)]
    for group in getattr(args, "override_set", None) or []:
        for text in group:
            key, value = parse_assignment(text)
            given.append((key, value, f"--set {text}"))
    origins = {}
    for key, _, origin in given:
        if key in origins:
            raise ConfigError(f"{key} is set twice, by {origins[key]} and by {origin}; keep one")
        origins[key] = origin
    return [(key, value) for key, value, _ in given]


def add_run_arguments(parser):
    """The flags every recipe, the table runner and `rignet train` take: the run's own (output
    folder, resume, ...) and the configuration overrides (`--set` and its aliases)."""
    p = parser
    p.add_argument("--output-dir", help="run folder (default runs/<run name>)")
    p.add_argument("--resume", action="store_true", help="continue from the run's backup")
    p.add_argument("--eval-only", action="store_true", help="evaluate the run's checkpoint")
    p.add_argument("--print-config", action="store_true", help="print the resolved configuration")
    p.add_argument("--quiet", action="store_true", help="no progress bars (train.verbose=2)")
    add_override_arguments(p)
    return p


def resolve(config, args, recipe=None, variants=None):
    """The configuration with the parsed flags' overrides applied; refuses, naming it, an
    override the recipe cannot honour."""
    pairs = overrides_from_args(args)
    if args.quiet:
        pairs.append(("train.verbose", 2))
    if recipe and variants:
        check_recipe_overrides(recipe, variants, pairs)
    return config.override(pairs)
