"""The `rignet` commands: train, evaluate, predict, quickstart (and `data`, from the data layer).

    rignet quickstart [--fast]
    rignet train --recipe recipes/voc_r50.py [--variant fcn] --data-dir DIR [--steps N ...]
    rignet train --recipe recipes/voc_r50.py --set train.steps=100 model.backbone=resnet18
    rignet train --config runs/r50/run_config.json [--resume]      # a resolved run, again
    rignet train --source voc_aug --backbone resnet50 --unroll-mode parallel --feedback-blocks 4 \
        --iterations 6 --sync-batch-norm --data-dir DIR --output-dir runs/r50
    rignet evaluate --run runs/r50                 # the run's checkpoint on its recorded data
    rignet evaluate --model runs/r50/checkpoints/best.keras --source voc --data-dir DIR [--flip]
    rignet predict --model model.keras IMAGE_OR_FOLDER... --output-dir preds [--ui 3]
    rignet data download voc --data-dir DIR

Every configuration flag of `train` is an alias of `--set section.key=value` (see
`rignet_keras.config`). Exit status: 0 done; 2 a user error (a flag, value, file or dataset the
command cannot use), printed as one line before any work is done where it can be checked
first; 1 a run that failed (training stopped on a NaN or an infinity: the line names the step and
the last good checkpoint).

The `rignet` entry point is `rignet_cli.launcher`: it answers `rignet --help` without
TensorFlow and sets TensorFlow's log level (off unless `--verbose`, before or after the
sub-command, or `TF_CPP_MIN_LOG_LEVEL` says otherwise) before it calls `main` here. `--verbose`
is accepted here too, so that a line the launcher passed on parses.
"""

import os
import sys

from rignet_cli.commands import DESCRIPTION, add_commands, add_verbose_argument
from rignet_keras.config.flags import add_set_argument
from rignet_keras.config.recipes import load_recipe
from rignet_keras.console import (
    EXIT_USER_ERROR,
    OneLineParser,
    UsageError,
    check_at_least,
    report_errors,
)


def train_config(args):
    """The resolved `RunConfig` of `rignet train`'s arguments (a recipe's variant, a config
    file, or the defaults), overrides applied."""
    from rignet_keras.config import ConfigError, RunConfig, default_run
    from rignet_keras.config.flags import resolve

    if args.recipe and args.config:
        raise ConfigError("--recipe and --config are exclusive: a config file is a whole run")
    if args.recipe:
        experiments = load_recipe(args.recipe).EXPERIMENTS
        variant = args.variant or next(iter(experiments))
        if variant not in experiments:
            raise ConfigError(f"variant {variant!r} not in {args.recipe}: {sorted(experiments)}")
        config = resolve(experiments[variant], args, args.recipe, experiments)
    elif args.variant:
        raise ConfigError("--variant needs --recipe")
    else:
        base = RunConfig.load(args.config) if args.config else default_run()
        config = resolve(base, args)
    if args.name:
        config = config.replace(name=args.name)
    return config


def cmd_train(args):
    import json

    from rignet_keras.training.recipe_command import run_guarded
    from rignet_keras.training.run_inputs import network_kwargs

    config = train_config(args)
    if args.print_config:  # what the run would record (ImageNet weights resolved)
        config = config.replace(model=network_kwargs(config.model))
        print(json.dumps(config.to_dict(), indent=2))
        return 0
    output_dir = args.output_dir or os.path.join("runs", config.name)
    return run_guarded(
        config, output_dir, resume=args.resume, eval_only=args.eval_only, progress=not args.quiet
    )


def _ints(text, flag):
    try:
        return [int(k) for k in text.split(",")]
    except ValueError:
        raise UsageError(f"{flag} must be comma-separated integers; received {text!r}") from None


# `rignet evaluate`'s evaluation flags and the run configuration keys they set: with --run they
# override what the run recorded; with --model they fill a configuration of their own whose
# other values are the configuration classes' defaults.
EVALUATE_FLAG_KEYS = {
    "source": "data.eval_source",
    "split": "data.eval_split",
    "data_dir": "data.data_dir",
    "label_convention": "data.label_convention",
    "eval_mode": "data.eval_mode",
    "batch_size": "data.eval_batch_size",
    "num_samples": "data.num_eval_samples",
    "on_bad_sample": "data.on_bad_sample",
    "iterations": "eval.iterations",
    "flip": "eval.flip",
    "scales": "eval.scales",
    "num_visualize": "eval.num_visualize",
}
MODEL_FILE_SOURCE = "voc"  # --source of `rignet evaluate --model` when not given


def check_evaluate_flags(args):
    """`rignet evaluate`'s flags, checked before anything is loaded: the (key, value) pairs of
    the run configuration that the flags given set (see `EVALUATE_FLAG_KEYS`)."""
    from rignet_keras.config.flags import floats

    if bool(args.run) == bool(args.model):
        raise UsageError("rignet evaluate needs one of --run DIR or --model FILE")
    values = {flag: getattr(args, flag) for flag in EVALUATE_FLAG_KEYS}
    if args.iterations is not None:
        values["iterations"] = tuple(_ints(args.iterations, "--iterations"))
        for k in values["iterations"]:
            check_at_least("--iterations", k, 1)
    if args.scales is not None:
        values["scales"] = tuple(floats(args.scales, "--scales", UsageError))
        if min(values["scales"]) <= 0:
            raise UsageError(f"--scales must be positive; received {args.scales!r}")
    check_at_least("--batch-size", args.batch_size, 1)
    check_at_least("--num-samples", args.num_samples, 1)
    check_at_least("--num-visualize", args.num_visualize, 0)
    if args.run:
        if not os.path.isdir(args.run):
            raise FileNotFoundError(f"no such run folder: {args.run}")
    elif not os.path.isfile(args.model):
        raise FileNotFoundError(f"no such model file: {args.model}")
    return [(EVALUATE_FLAG_KEYS[f], v) for f, v in values.items() if v is not None]


def evaluate_config(args, overrides):
    """The configuration `rignet evaluate` evaluates with: the run's recorded one (`--run`) or
    the configuration classes' defaults on `MODEL_FILE_SOURCE` (`--model`), then `overrides`."""
    from rignet_keras.config import CONFIG_NAME, RunConfig

    if args.run:
        return RunConfig.load(os.path.join(args.run, CONFIG_NAME)).override(overrides)
    return RunConfig().override([("data.source", MODEL_FILE_SOURCE), *overrides])


def cmd_evaluate(args):
    from rignet_keras.config import ConfigError, parse_assignment

    overrides = check_evaluate_flags(args)
    for key, value in (parse_assignment(t) for group in args.overrides for t in group):
        if key.split(".")[0] not in ("data", "eval"):
            raise ConfigError(f"--set {key}: rignet evaluate sets data and eval fields only")
        overrides.append((key, value))
    if args.print_config:
        import json

        print(json.dumps(evaluate_config(args, overrides).to_dict(), indent=2))
        return 0
    if args.run:
        from rignet_keras.training.experiment import evaluate_run

        output_dir = args.output_dir or os.path.join(args.run, "eval")
        result = evaluate_run(
            args.run, output_dir=output_dir, progress=not args.quiet, overrides=overrides
        )
    else:
        from rignet_keras.training.experiment import evaluate_model

        output_dir = args.output_dir or "eval"
        model = load_rignet(args.model)
        config = evaluate_config(args, overrides)
        result = evaluate_model(
            model, config, args.model, output_dir=output_dir, progress=not args.quiet
        )
    print(result.table())
    print(f"wrote {output_dir}/results.json and anytime_miou.png")
    return 0


def load_rignet(path):
    """The RIGNet saved in a `.keras` file (`rignet_keras.models.loading.load_rignet`); a file
    that cannot be loaded as one is refused in one line naming it (`UsageError`)."""
    from rignet_keras.models.loading import load_rignet as load_saved_rignet

    try:
        return load_saved_rignet(path)
    except ValueError as error:
        raise UsageError(f"--model {error}") from None


def list_images(inputs):
    """The image files named by `inputs` (files, or folders scanned for `IMAGE_SUFFIXES`): the
    device runtime's lister, over several inputs."""
    from rignet_runtime import list_images as list_one

    return [path for item in inputs for path in list_one(item)]


def check_images(paths):
    """Refuses, naming it, a file that is not a whole image (text named `.png`, a JPEG with
    corrupt scan data: `rignet_runtime.read_image_file`), before any model is loaded."""
    from rignet_runtime import read_image_file

    for path in paths:
        read_image_file(path)


def predict_images(model, paths, output_dir, num_iterations=None, with_gate_maps=False):
    """Predicts each image (upright: EXIF orientation applied) at its own size and writes its
    palette-PNG mask and RGB-PNG overlay (and gate maps if asked) into `output_dir`, named by
    the runtime (`rignet_runtime.output_paths`: one set of files per input, never an
    input overwritten). Returns the list of {"image", "mask", "overlay", "gate_maps"} written.
    """
    import numpy as np
    import tensorflow as tf

    from rignet_keras.preprocessing import normalize
    from rignet_keras.training.evaluate import logits_per_iteration
    from rignet_keras.training.visualize import gate_statistics, save_gate_figure
    from rignet_runtime import load_image, output_paths, write_mask, write_overlay

    k = num_iterations or getattr(model, "num_iterations", 1)
    if with_gate_maps and getattr(model, "feedback_blocks", None) is None:
        raise UsageError("--gate-maps: the model has no feedback gates (a feed-forward network)")
    if with_gate_maps and k < 2:
        raise UsageError("--gate-maps: ui 1 runs no gate (the gates act from ui 2); pass --ui 2+")
    plans = output_paths(paths, output_dir, overlays=True, gate_maps=with_gate_maps)
    os.makedirs(output_dir, exist_ok=True)
    predict = tf.function(
        lambda x: logits_per_iteration(model, x, [k])[k], reduce_retracing=True, autograph=False
    )
    written = []
    for path, plan in zip(paths, plans, strict=True):
        rgb = load_image(path)
        x = normalize(rgb[None], model.preprocessing)
        mask = tf.argmax(predict(x), axis=-1)[0].numpy().astype(np.uint8)
        write_mask(plan["mask"], mask)
        write_overlay(plan["overlay"], rgb, mask)
        if with_gate_maps:
            stats = gate_statistics(model, x, k)
            save_gate_figure(
                stats, rgb, plan["gate_maps"], title=f"{os.path.basename(path)}, ui {k}"
            )
        written.append(dict(plan, image=path))
    return written


def cmd_predict(args):
    from rignet_runtime import output_paths

    check_at_least("--ui", args.ui, 1)
    paths = list_images(args.inputs)
    output_paths(paths, args.output_dir, overlays=True, gate_maps=args.gate_maps)  # refusals
    check_images(paths)
    model = load_rignet(args.model)
    written = predict_images(model, paths, args.output_dir, args.ui, args.gate_maps)
    print(
        f"wrote {len(written)} masks and overlays (PNG) for {len(paths)} images to "
        f"{args.output_dir}"
    )
    return 0


def cmd_quickstart(argv):
    from rignet_keras.quickstart import main as quickstart_main

    return quickstart_main(argv)


def cmd_data(argv):
    try:
        from rignet_keras.data.cli import main as data_main
    except ImportError as error:
        print(f"error: the data commands are not available: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    return data_main(argv)


def add_train_arguments(parser):
    """`rignet train`'s flags: where the run comes from, and the overrides (no TensorFlow)."""
    from rignet_keras.config.flags import add_override_arguments

    p = parser
    p.add_argument("--recipe", help="a recipe file (recipes/*.py)")
    p.add_argument("--variant", help="the recipe's variant")
    p.add_argument("--config", help="a resolved configuration (a run's run_config.json)")
    p.add_argument("--name", help="run name (the default folder is runs/<name>)")
    p.add_argument("--output-dir", help="run folder (default runs/<run name>)")
    p.add_argument("--resume", action="store_true", help="continue from the run's backup")
    p.add_argument("--eval-only", action="store_true", help="evaluate the run's checkpoint")
    p.add_argument("--print-config", action="store_true", help="print the resolved configuration")
    p.add_argument("--quiet", action="store_true", help="no progress bars (train.verbose=2)")
    add_verbose_argument(p)
    add_override_arguments(p)
    return p


def build_parser():
    parser = OneLineParser(prog="rignet", description=DESCRIPTION)
    commands = add_commands(parser)
    add_train_arguments(commands["train"])

    ev = commands["evaluate"]
    ev.add_argument("--run", help="a run folder: its checkpoint on the data it recorded")
    ev.add_argument("--model", help="a .keras file")
    ev.add_argument(
        "--source",
        help=f"evaluation dataset (default: the run's, or {MODEL_FILE_SOURCE} with --model)",
    )
    ev.add_argument("--split", help="its split (default: the run's, or val)")
    ev.add_argument("--data-dir", help="the data folder (default: the run's, or the default)")
    ev.add_argument("--label-convention", help='COCO-Stuff "171" or "182" (default: 171)')
    ev.add_argument(
        "--eval-mode", choices=("pad", "resize", "none"), help="batching of eval images"
    )
    ev.add_argument("--batch-size", type=int, help="evaluation batch size (default 1)")
    ev.add_argument("--iterations", help="ui values, e.g. 1,2,4,6 (default 1..model's)")
    ev.add_argument("--flip", action="store_true", default=None, help="flip testing")
    ev.add_argument("--scales", help="multi-scale testing, e.g. 0.75,1,1.25")
    ev.add_argument("--num-samples", type=int, help="evaluate only the first N samples")
    ev.add_argument(
        "--on-bad-sample",
        choices=("raise", "skip"),
        help="an unreadable sample: stop naming it (default), or leave it out",
    )
    ev.add_argument("--num-visualize", type=int, help="images drawn (default 8)")
    ev.add_argument("--output-dir", help="default: eval, or <run>/eval with --run")
    add_set_argument(ev, "set a data or eval field (the flags above are aliases of it)")
    ev.add_argument(
        "--print-config", action="store_true", help="print the configuration evaluated and exit"
    )
    ev.add_argument("--quiet", action="store_true", help="no progress bar")
    add_verbose_argument(ev)

    pr = commands["predict"]
    pr.add_argument("inputs", nargs="+", help="image files or folders")
    pr.add_argument("--model", required=True, help="a .keras file")
    pr.add_argument("--output-dir", default="predictions")
    pr.add_argument("--ui", type=int, help="iterations, >= 1 (default the model's)")
    pr.add_argument(
        "--gate-maps",
        action="store_true",
        help="also draw what the gates do (<stem>_gates.png: spread across channels, most "
        "selective channels, change of the gate and of the prediction per iteration)",
    )
    add_verbose_argument(pr)
    return parser


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "--verbose":  # TensorFlow's log level: set by the launcher
        argv = argv[1:]
    # quickstart and data own their flags: forward everything after the sub-command.
    if argv and argv[0] == "quickstart":
        return report_errors(lambda: cmd_quickstart(argv[1:]))
    if argv and argv[0] == "data":
        rest = [a for a in argv[1:] if a != "--verbose"]
        return report_errors(lambda: cmd_data(rest))
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # argparse: --help (0) or a usage error (2, already printed)
        return exit_.code
    commands = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict}
    return report_errors(lambda: commands[args.command](args))


if __name__ == "__main__":
    sys.exit(main())
