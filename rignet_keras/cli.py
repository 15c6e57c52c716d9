"""The `rignet` command: train, evaluate, predict, quickstart (and `data`, from the data layer).

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
`rignet_keras.config`); a user error prints one line and exits with status 2.
"""

import argparse
import importlib.util
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def load_recipe(path):
    """The module of a recipe file (its `EXPERIMENTS` dict is what `rignet train` runs)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"recipe not found: {path}")
    spec = importlib.util.spec_from_file_location(
        f"rignet_recipe_{os.path.splitext(os.path.basename(path))[0]}", path
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "EXPERIMENTS"):
        raise ValueError(f"recipe {path} defines no EXPERIMENTS dict")
    return module


def train_config(args):
    """The resolved `RunConfig` of `rignet train`'s arguments (a recipe's variant, a config
    file, or the defaults), overrides applied."""
    from rignet_keras.config import ConfigError, RunConfig
    from rignet_keras.training.experiment import default_run, resolve

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

    from rignet_keras.training.experiment import run_guarded

    config = train_config(args)
    if args.print_config:
        print(json.dumps(config.to_dict(), indent=2))
        return 0
    output_dir = args.output_dir or os.path.join("runs", config.name)
    return run_guarded(config, output_dir, resume=args.resume, eval_only=args.eval_only,
                       progress=not args.quiet)  # fmt: skip


def _ints(text, flag):
    try:
        return [int(k) for k in text.split(",")]
    except ValueError:
        raise ValueError(f"{flag} must be comma-separated integers; received {text!r}") from None


def _floats(text, flag):
    try:
        return tuple(float(s) for s in text.split(","))
    except ValueError:
        raise ValueError(f"{flag} must be comma-separated numbers; received {text!r}") from None


def cmd_evaluate(args):
    if bool(args.run) == bool(args.model):
        raise ValueError("rignet evaluate needs one of --run DIR or --model FILE")
    iterations = _ints(args.iterations, "--iterations") if args.iterations else None
    scales = _floats(args.scales, "--scales") if args.scales else (1.0,)
    if args.run:
        from rignet_keras.training.experiment import evaluate_run

        if not os.path.isdir(args.run):
            raise FileNotFoundError(f"no such run folder: {args.run}")
        output_dir = args.output_dir or os.path.join(args.run, "eval")
        result = evaluate_run(args.run, output_dir=output_dir, progress=not args.quiet)
        print(result.table())
        print(f"wrote {output_dir}/results.json and anytime_miou.png")
        return 0
    if not os.path.isfile(args.model):
        raise FileNotFoundError(f"no such model file: {args.model}")

    import keras

    import rignet_keras  # noqa: F401  (registers the classes)
    from rignet_keras.data import build_dataset
    from rignet_keras.training.evaluate import evaluate
    from rignet_keras.training.experiment import check_num_classes
    from rignet_keras.training.visualize import save_predictions

    output_dir = args.output_dir or "eval"
    model = keras.models.load_model(args.model, safe_mode=True)
    common = dict(data_dir=args.data_dir, preprocessing=model.preprocessing,
                  label_convention=args.label_convention,
                  on_bad_sample=args.on_bad_sample)  # fmt: skip
    dataset, info = build_dataset(
        args.source, args.split, batch_size=args.batch_size, training=False,
        eval_mode=args.eval_mode, num_samples=args.num_samples, with_info=True, **common,
    )  # fmt: skip
    check_num_classes(model, info, args.model)
    result = evaluate(
        model, dataset, info.num_classes, iterations=iterations, flip=args.flip, scales=scales,
        class_names=info.class_names, progress=not args.quiet,
        info={"model": args.model, "dataset": info.to_dict()},
    )  # fmt: skip
    result.save(output_dir, title=os.path.basename(args.model))
    print(result.table())
    if args.num_visualize:
        vis = build_dataset(args.source, args.split, batch_size=1, training=False,
                            eval_mode=args.eval_mode, num_samples=args.num_visualize,
                            return_ids=True, **common)  # fmt: skip
        save_predictions(model, vis, os.path.join(output_dir, "predictions"),
                         num_images=args.num_visualize)  # fmt: skip
    print(f"wrote {output_dir}/results.json and anytime_miou.png")
    return 0


def list_images(inputs):
    """The image files named by `inputs` (files, or folders scanned for `IMAGE_SUFFIXES`): the
    device runtime's lister, over several inputs."""
    from rignet_keras.runtime import list_images as list_one

    return [path for item in inputs for path in list_one(item)]


def predict_images(model, paths, output_dir, num_iterations=None, with_gate_maps=False):
    """Predicts each image at its own size; writes `<stem>.png` (palette mask) and
    `<stem>_overlay.jpg` (and gate maps if asked) into `output_dir`. Returns the mask paths."""
    import numpy as np
    import tensorflow as tf
    from PIL import Image

    from rignet_keras.preprocessing import normalize
    from rignet_keras.training.evaluate import logits_per_iteration
    from rignet_keras.training.visualize import gate_maps, overlay, save_gate_maps, save_palette_png

    os.makedirs(output_dir, exist_ok=True)
    k = num_iterations or getattr(model, "num_iterations", 1)
    predict = tf.function(
        lambda x: logits_per_iteration(model, x, [k])[k], reduce_retracing=True, autograph=False
    )
    written = []
    for path in paths:
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB"))
        x = normalize(rgb[None], model.preprocessing)
        mask = tf.argmax(predict(x), axis=-1)[0].numpy().astype(np.uint8)
        stem = os.path.splitext(os.path.basename(path))[0]
        written.append(save_palette_png(os.path.join(output_dir, f"{stem}.png"), mask))
        Image.fromarray(overlay(rgb, mask)).save(os.path.join(output_dir, f"{stem}_overlay.jpg"))
        if with_gate_maps and k > 1:
            save_gate_maps(gate_maps(model, x, k), rgb,
                           os.path.join(output_dir, f"{stem}_gates.png"))  # fmt: skip
    return written


def cmd_predict(args):
    paths = list_images(args.inputs)
    if not os.path.isfile(args.model):
        raise FileNotFoundError(f"no such model file: {args.model}")
    import keras

    import rignet_keras  # noqa: F401

    model = keras.models.load_model(args.model, safe_mode=True)
    written = predict_images(model, paths, args.output_dir, args.ui, args.gate_maps)
    print(f"wrote {len(written)} masks (palette PNG) and overlays to {args.output_dir}")
    return 0


def cmd_quickstart(argv):
    from rignet_keras.quickstart import main as quickstart_main

    return quickstart_main(argv)


def cmd_data(argv):
    try:
        from rignet_keras.data.cli import main as data_main
    except ImportError as error:
        print(f"error: the data commands are not available: {error}", file=sys.stderr)
        return 2
    return data_main(argv)


def add_train_arguments(parser):
    """`rignet train`'s flags: where the run comes from, and the overrides (no TensorFlow)."""
    from rignet_keras.config import add_override_arguments

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
    add_override_arguments(p)
    return p


def build_parser():
    parser = argparse.ArgumentParser(prog="rignet", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train and evaluate a run (a recipe, a config, flags)")
    add_train_arguments(train)

    ev = sub.add_parser("evaluate", help="evaluate a run or a saved model for every ui")
    ev.add_argument("--run", help="a run folder: its checkpoint on the data it recorded")
    ev.add_argument("--model", help="a .keras file")
    ev.add_argument("--source", default="voc")
    ev.add_argument("--split", default="val")
    ev.add_argument("--data-dir")
    ev.add_argument("--label-convention", default="171")
    ev.add_argument("--eval-mode", default="pad", help="pad, resize or none")
    ev.add_argument("--batch-size", type=int, default=1)
    ev.add_argument("--iterations", help="ui values, e.g. 1,2,4,6 (default 1..model's)")
    ev.add_argument("--flip", action="store_true")
    ev.add_argument("--scales", help="e.g. 0.75,1,1.25")
    ev.add_argument("--num-samples", type=int)
    ev.add_argument("--on-bad-sample", default="raise", choices=("raise", "skip"),
                    help="an unreadable sample: stop naming it, or leave it out")  # fmt: skip
    ev.add_argument("--num-visualize", type=int, default=8)
    ev.add_argument("--output-dir", help="default: eval, or <run>/eval with --run")
    ev.add_argument("--quiet", action="store_true")

    pr = sub.add_parser("predict", help="segment images; palette PNG + overlay per image")
    pr.add_argument("inputs", nargs="+", help="image files or folders")
    pr.add_argument("--model", required=True, help="a .keras file")
    pr.add_argument("--output-dir", default="predictions")
    pr.add_argument("--ui", type=int, help="iterations (default the model's)")
    pr.add_argument("--gate-maps", action="store_true", help="also draw the gate maps")

    sub.add_parser("quickstart", help="train and compare a small RIGNet on synthetic data",
                   add_help=False)  # fmt: skip
    sub.add_parser("data", help="dataset commands (download, convert, ...)", add_help=False)
    return parser


def _user_errors():
    """The exception types that are the user's to fix: one line, exit status 2."""
    from rignet_keras.config import ConfigError

    errors = [ConfigError, FileNotFoundError, ValueError]  # the runtime's RunnerError included
    if "rignet_keras.data" in sys.modules:
        errors.append(sys.modules["rignet_keras.data"].DatasetError)
    return tuple(errors)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    # quickstart and data own their flags: forward everything after the sub-command.
    if argv and argv[0] == "quickstart":
        return cmd_quickstart(argv[1:])
    if argv and argv[0] == "data":
        return cmd_data(argv[1:])
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # argparse: --help (0) or a usage error (2, already printed)
        return exit_.code
    commands = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict}
    try:
        return commands[args.command](args)
    except _user_errors() as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
