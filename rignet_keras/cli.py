"""The `rignet` command: train, evaluate, predict, quickstart (and `data`, from the data layer).

    rignet quickstart [--fast]
    rignet train --recipe recipes/voc_r50.py [--variant fcn] --data-dir DIR [--steps N ...]
    rignet train --source voc_aug --backbone resnet50 --unroll-mode parallel --feedback-blocks 4 \
        --iterations 6 --data-dir DIR --output-dir runs/r50
    rignet evaluate --model runs/r50/checkpoints/best.keras --source voc --data-dir DIR [--flip]
    rignet predict --model model.keras IMAGE_OR_FOLDER... --output-dir preds [--ui 3]
    rignet data download voc --data-dir DIR
"""

import argparse
import importlib.util
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


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


def _parse_blocks(value):
    if value in (None, "none", "None"):
        return None
    parts = [int(v) for v in value.replace("..", ",").split(",")]
    return (min(parts), 6) if len(parts) == 1 else (min(parts), max(parts))


def cmd_train(args):
    from rignet_keras.training.experiment import (
        DataConfig,
        Experiment,
        ModelConfig,
        apply_overrides,
        run_guarded,
    )
    from rignet_keras.training.trainer import TrainConfig

    if args.recipe:
        module = load_recipe(args.recipe)
        experiments = module.EXPERIMENTS
        variant = args.variant or next(iter(experiments))
        if variant not in experiments:
            print(f"error: variant {variant!r} not in {sorted(experiments)}", file=sys.stderr)
            return 2
        exp = experiments[variant]
    else:
        model = ModelConfig(
            backbone=args.backbone_name, unroll_mode=args.unroll_mode,
            feedback_blocks=_parse_blocks(args.feedback_blocks), num_iterations=args.iterations,
            output_stride=args.output_stride, gate_pooling=None if args.gate_pooling == "none"
            else args.gate_pooling, gate_combine=args.gate_combine,
            return_all_iterations=args.deep_supervision is not None,
        )  # fmt: skip
        data = DataConfig(source=args.source, eval_source=args.eval_source,
                          eval_split=args.eval_split)  # fmt: skip
        train = TrainConfig(
            train_iterations=_parse_range(args.random_ui),
            iteration_loss_weights=args.deep_supervision,
            backbone_lr_multiplier=args.backbone_lr_multiplier,
            weight_decay=args.weight_decay, warmup_steps=args.warmup_steps,
            recompute=args.recompute,
        )  # fmt: skip
        exp = Experiment(name=args.name or "run", model=model, data=data, train=train)
    exp = apply_overrides(exp, args)
    output_dir = args.output_dir or os.path.join("runs", exp.name)
    return run_guarded(exp, output_dir, resume=args.resume, eval_only=args.eval_only,
                       progress=not args.quiet)  # fmt: skip


def _parse_range(value):
    if value is None:
        return None
    lo, _, hi = value.partition(",")
    return (int(lo), int(hi or lo))


def cmd_evaluate(args):
    import keras

    import rignet_keras  # noqa: F401  (registers the classes)
    from rignet_keras.data import DatasetError, build_dataset
    from rignet_keras.training.evaluate import evaluate
    from rignet_keras.training.visualize import save_predictions

    model = keras.models.load_model(args.model, safe_mode=True)
    common = dict(data_dir=args.data_dir, preprocessing=model.preprocessing,
                  label_convention=args.label_convention)  # fmt: skip
    try:
        dataset, info = build_dataset(
            args.source, args.split, batch_size=args.batch_size, training=False,
            eval_mode=args.eval_mode, num_samples=args.num_samples, with_info=True, **common,
        )  # fmt: skip
    except DatasetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    iterations = [int(k) for k in args.iterations.split(",")] if args.iterations else None
    scales = tuple(float(s) for s in args.scales.split(",")) if args.scales else (1.0,)
    result = evaluate(
        model, dataset, info.num_classes, iterations=iterations, flip=args.flip, scales=scales,
        class_names=info.class_names, progress=not args.quiet,
        info={"model": args.model, "dataset": info.to_dict()},
    )  # fmt: skip
    result.save(args.output_dir, title=os.path.basename(args.model))
    print(result.table())
    if args.num_visualize:
        vis = build_dataset(args.source, args.split, batch_size=1, training=False,
                            eval_mode=args.eval_mode, num_samples=args.num_visualize,
                            return_ids=True, **common)  # fmt: skip
        save_predictions(model, vis, os.path.join(args.output_dir, "predictions"),
                         num_images=args.num_visualize)  # fmt: skip
    print(f"wrote {args.output_dir}/results.json and anytime_miou.png")
    return 0


def list_images(inputs):
    """The image files named by `inputs` (files, or folders scanned for images), sorted."""
    paths = []
    for item in inputs:
        if os.path.isdir(item):
            paths.extend(
                os.path.join(item, f) for f in sorted(os.listdir(item))
                if f.lower().endswith(IMAGE_EXTENSIONS)
            )  # fmt: skip
        elif os.path.isfile(item):
            paths.append(item)
        else:
            raise FileNotFoundError(f"no such image or folder: {item}")
    if not paths:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {inputs}")
    return paths


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
    import keras

    import rignet_keras  # noqa: F401

    model = keras.models.load_model(args.model, safe_mode=True)
    paths = list_images(args.inputs)
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


def build_parser():
    from rignet_keras.training.experiment import add_run_arguments

    parser = argparse.ArgumentParser(prog="rignet", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train and evaluate a model (a recipe, or flags)")
    train.add_argument("--recipe", help="a recipe file (recipes/*.py)")
    train.add_argument("--variant", help="the recipe's variant")
    train.add_argument("--name", help="run name (without --recipe)")
    train.add_argument("--source", default="voc_aug", help="training dataset")
    train.add_argument("--eval-source", help="evaluation dataset (default: --source)")
    train.add_argument("--eval-split", default="val")
    train.add_argument("--backbone-name", default="resnet50", help="backbone (without --recipe)")
    train.add_argument("--unroll-mode", default="parallel")
    train.add_argument("--feedback-blocks", default="4",
                       help="first gated block (e.g. 4 for <6..4>), 'a,b', or none")  # fmt: skip
    train.add_argument("--iterations", type=int, default=2, help="ui")
    train.add_argument("--output-stride", type=int)
    train.add_argument("--gate-pooling", default="avg", help="avg, max or none")
    train.add_argument("--gate-combine", default="mul_sigmoid")
    train.add_argument("--random-ui", help="lo,hi: ui drawn per step (random-ui training)")
    train.add_argument("--deep-supervision", help="uniform or linear: loss on every iteration")
    train.add_argument("--backbone-lr-multiplier", type=float, default=0.1)
    train.add_argument("--weight-decay", type=float, default=1e-4)
    train.add_argument("--warmup-steps", type=int, default=0)
    train.add_argument("--recompute", action="store_true", help="recompute gated blocks")
    add_run_arguments(train)

    ev = sub.add_parser("evaluate", help="evaluate a saved model for every ui")
    ev.add_argument("--model", required=True, help="a .keras file")
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
    ev.add_argument("--num-visualize", type=int, default=8)
    ev.add_argument("--output-dir", default="eval")
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


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    # quickstart and data own their flags: forward everything after the sub-command.
    if argv and argv[0] == "quickstart":
        return cmd_quickstart(argv[1:])
    if argv and argv[0] == "data":
        return cmd_data(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            return cmd_train(args)
        if args.command == "evaluate":
            return cmd_evaluate(args)
        if args.command == "predict":
            return cmd_predict(args)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
