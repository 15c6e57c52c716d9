"""The quickstart: train a small RIGNet and its feed-forward baseline on the built-in synthetic
dataset, evaluate both for every ui, and write the model, predictions and gate maps.

    rignet quickstart                       # a few minutes on 2 CPU cores
    python -m rignet_keras.quickstart --fast   # seconds: a smoke test

The synthetic task (see `rignet_keras.data.synthetic`) is built so that context matters: every
object looks the same inside, and only one small coloured mark says its class, so labelling the
far side of an object needs the mark's evidence carried across it, which is what the feedback
gates are for. The default run is short; the numbers it prints show the pipeline working, not
the paper's gains (train longer, e.g. `--steps 2000`, for those).

Writes (under `--output-dir`, default `rignet-quickstart/`)::

    fcn/, rignet/             each model's run (`rignet_keras.training.run_experiment`):
                              run_config.json, checkpoints, history.csv, eval/results.json
    rignet.keras              the trained RIGNet (load with keras.models.load_model)
    export/                   rignet_float32.tflite (every ui), rignet_mediapipe_ui<k>_float32
                              .tflite (one ui each, for MediaPipe's ImageSegmenter, class
                              names inside) and manifest.json (with each graph's latency and
                              its mIoU on the validation set)
    anytime_miou.png          mIoU against ui, both models
    predictions/              palette masks, overlays and gate maps of a few validation images
    results.json              the printed table as data
"""

import dataclasses
import json
import os
import sys
import time

from rignet_keras.config.quickstart import (
    QUICKSTART_FLAGS,
    QuickstartConfig,
    override_quickstart,
    quickstart_runs,
)
from rignet_keras.console import shown_path
from rignet_runtime.atomic import write_json


def resolved_runs(cfg, output_dir, overrides=(), progress=True):
    """`quickstart_runs` with the `--set` overrides applied to both (what `--print-config`
    prints and the quickstart runs)."""
    if not progress:
        overrides = [*overrides, ("train.verbose", 2)]
    runs = quickstart_runs(cfg, output_dir)
    return {name: config.override(overrides) for name, config in runs.items()}


def run_quickstart(cfg=None, output_dir="rignet-quickstart", progress=True, overrides=()):
    """Runs the quickstart; returns the results dict (also written to `results.json`).

    Args:
        cfg: the sizes (`QuickstartConfig`).
        overrides: `section.key=value` overrides applied to both runs (`--set`).
    """
    cfg = cfg or QuickstartConfig()
    t_start = time.time()
    import keras

    from rignet_keras.training.experiment import run_experiment
    from rignet_keras.training.plots import plot_anytime
    from rignet_keras.training.run_inputs import eval_dataset
    from rignet_keras.training.visualize import save_predictions

    runs = resolved_runs(cfg, output_dir, overrides, progress)
    os.makedirs(output_dir, exist_ok=True)
    print(
        f"RIGNet quickstart: {cfg.backbone} FCN vs RIGNet Pu<6..{cfg.feedback_blocks[0]}> "
        f"ui={cfg.num_iterations} on synthetic {cfg.image_size}x{cfg.image_size} images "
        f"({cfg.num_classes} classes, {cfg.num_train} train / {cfg.num_val} val), "
        f"{cfg.steps} steps of batch {cfg.batch_size}",
        flush=True,
    )
    results = {"config": dataclasses.asdict(cfg), "models": {}}
    curves = {}
    done = {}
    for name, config in runs.items():
        print(f"\n== {config.label()} ==", flush=True)
        done[name] = run = run_experiment(config, os.path.join(output_dir, name), progress=progress)
        scores = run.evaluation.scores
        curves[config.label()] = run.evaluation.curve()
        results["models"][name] = {
            "label": config.label(),
            "run": run.summary["output_dir"],
            "train_seconds": round(run.summary["train_seconds"], 1),
            "mIoU": {str(k): s["mIoU"] for k, s in scores.items()},
            "pAcc": {str(k): s["pAcc"] for k, s in scores.items()},
        }

    rignet = done["rignet"].network
    model_path = os.path.join(output_dir, "rignet.keras")
    rignet.save(model_path)
    reloaded = keras.models.load_model(model_path, safe_mode=True)
    export_dir = done["rignet"].summary["exports"]["dir"]
    tflite = sorted(f for f in os.listdir(export_dir) if f.endswith(".tflite"))
    results["exports"] = {
        "tflite": os.path.join(export_dir, tflite[0]) if tflite else None,
        "manifest": os.path.join(export_dir, "manifest.json"),
        "quality": done["rignet"].summary["exports"]["quality"],
    }
    plot_anytime(
        curves, os.path.join(output_dir, "anytime_miou.png"), title="synthetic val: mIoU against ui"
    )
    vis, _ = eval_dataset(
        runs["rignet"].data,
        reloaded.preprocessing,
        return_ids=True,
        num_samples=cfg.num_visualize,
        batch_size=cfg.num_visualize,
    )
    save_predictions(
        reloaded, vis, os.path.join(output_dir, "predictions"), num_images=cfg.num_visualize
    )
    results["model_path"] = model_path
    results["seconds"] = round(time.time() - t_start, 1)
    write_json(os.path.join(output_dir, "results.json"), results)
    print("\n" + format_table(results), flush=True)
    tflite = shown_path(results["exports"]["tflite"])
    print(
        f"\nwrote {output_dir}/ (model: {model_path}, TFLite: {tflite}, "
        f"plot: anytime_miou.png, predictions/ with gate maps) in {results['seconds']:.0f} s; "
        f"each run's configuration is in its run_config.json (rignet evaluate --run "
        f"{os.path.join(output_dir, 'rignet')})",
        flush=True,
    )
    return results


def format_table(results):
    """The quickstart's table: mIoU (%) of each model at each ui."""
    max_ui = max(len(m["mIoU"]) for m in results["models"].values())
    head = f"{'model (synthetic val mIoU %)':40s}" + "".join(
        f"{'ui=' + str(k):>8s}" for k in range(1, max_ui + 1)
    )
    lines = [head, "-" * len(head)]
    for m in results["models"].values():
        cells = "".join(f"{100 * v:8.1f}" for v in m["mIoU"].values())
        lines.append(f"{m['label']:40s}{cells}")
    return "\n".join(lines)


def main(argv=None):
    """`rignet quickstart`: returns the exit status (2 for a flag or override it cannot use,
    printed as one line; 1 when training stopped on a NaN or an infinity)."""
    from rignet_cli.commands import add_verbose_argument
    from rignet_keras.config import parse_assignment
    from rignet_keras.config.flags import add_set_argument
    from rignet_keras.console import OneLineParser, report_errors

    parser = OneLineParser(
        prog="rignet quickstart",
        description="Train a small RIGNet and its FCN baseline on synthetic data; evaluate.",
    )
    parser.add_argument("--output-dir", default="rignet-quickstart")
    parser.add_argument("--fast", action="store_true", help="a seconds-long smoke test")
    for flag, field, kind, low, text in QUICKSTART_FLAGS:
        bound = "" if low is None else f", >= {low}"
        parser.add_argument(flag, type=kind, help=f"{text}{bound} (quickstart.{field})")
    add_set_argument(
        parser,
        "override a field of the sizes (quickstart.<field>) or of both runs' configuration",
    )
    parser.add_argument(
        "--deterministic", action="store_true", help="bit-equal runs (train.deterministic)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="print both runs' resolved configurations and exit",
    )
    add_verbose_argument(parser)  # read by the launcher, before TensorFlow is imported
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help (0) or a usage error (2, already printed)
        return exit_.code

    def run():
        # The named flags first, then --set: a later assignment of the same field wins.
        named, pairs = {}, []
        for flag, field, _, _, _ in QUICKSTART_FLAGS:
            value = getattr(args, flag[2:].replace("-", "_"))
            if value is not None:
                named[f"quickstart.{field}"] = flag
                pairs.append((f"quickstart.{field}", value))
        for text in (text for group in args.overrides for text in group):
            pairs.append(parse_assignment(text))
            named.pop(pairs[-1][0], None)  # --set names its own key
        base = QuickstartConfig.fast() if args.fast else QuickstartConfig()
        cfg, overrides = override_quickstart(base, pairs, named)
        if args.deterministic:
            overrides.append(("train.deterministic", True))
        if args.print_config:
            runs = resolved_runs(cfg, args.output_dir, overrides, progress=not args.quiet)
            print(json.dumps({n: c.to_dict() for n, c in runs.items()}, indent=2))
            return 0
        # Here, not at the top: the training package imports Keras, which --help must not.
        from rignet_keras.training.determinism import restart_for_determinism

        restart_for_determinism(dict(overrides).get("train.deterministic") is True)
        run_quickstart(cfg, args.output_dir, progress=not args.quiet, overrides=overrides)
        return 0

    return report_errors(run)


if __name__ == "__main__":
    sys.exit(main())
