"""Stopping when the answer settles: the runtime's stopping rule on TFLite step-wise graphs.

    python -m bench.stopping                             # train (cached), export, record, sweep
    python -m bench.stopping --steps 300 --tag 300steps  # a shorter run: stopping_300steps.*

One RIGNet Pu<6..4> (the quickstart's ResNet-18 on the synthetic task) trained with the ui drawn
from [1, K] at every step (`TrainConfig.train_iterations=(1, K)`), so that every ui is a served
budget; its step-wise TFLite graphs (`init`, then `step` after `step`) run on the validation
images, recording each image's class map and probabilities after every iteration. The same
rule code the runtime stops with (`rignet_runtime.stopping`) is then replayed over a sweep
of thresholds: for each, the mean passes used, the share of gated passes and of multiply-adds
beyond ui = 1 saved (MACs of `init` and `step` from the manifest), and the mIoU of the stopped
predictions (`rignet_keras.confusion`) against the mIoU at ui = K and at the best ui.

Every stage is cached in the work folder (the trained model, the export, the records), so a
second run only replays. Writes `bench/results/stopping.json` and `bench/results/stopping_*.png`.
"""

import dataclasses
import json
import os
import sys
import time

import numpy as np

from bench.common import (
    RESULTS_DIR,
    bench_parser,
    command_line,
    machine,
    median,
    set_tf_threads,
    write_json,
    write_npz,
)

K = 4
STEPS = 1200
NUM_VAL = 128
SEED = 0


def default_work_dir(steps, fixed_ui=False):
    """Where a run of `steps` training steps keeps its model, export and records."""
    scheme = "_fixed" if fixed_ui else ""
    return os.path.join("/tmp", f"rignet_bench_stopping_{steps}{scheme}")


def quickstart_config(steps=STEPS, num_val=NUM_VAL):
    """The quickstart's sizes with ui K and a larger validation set."""
    from rignet_keras.config.quickstart import QuickstartConfig

    return QuickstartConfig(num_iterations=K, num_val=num_val, steps=steps, seed=SEED)


def train_iterations(fixed_ui):
    """K when the model is trained at ui = K only, else (1, K): the ui drawn at every step."""
    return K if fixed_ui else (1, K)


def run_config(cfg, work_dir, fixed_ui=False):
    """The RIGNet run of the quickstart, trained with the ui drawn from [1, K] (or at K)."""
    from rignet_keras.config import ExportConfig
    from rignet_keras.config.quickstart import quickstart_runs

    config = quickstart_runs(cfg, work_dir)["rignet"]
    config = config.replace(
        train={"train_iterations": train_iterations(fixed_ui), "tensorboard": False}
    )
    return dataclasses.replace(config, export=ExportConfig())


def train(cfg, work_dir, progress=False, fixed_ui=False):
    """Trains (or reuses) the model; returns (path of the .keras file, run summary)."""
    model_path = os.path.join(work_dir, "rignet.keras")
    summary_path = os.path.join(work_dir, "train_summary.json")
    if os.path.isfile(model_path) and os.path.isfile(summary_path):
        with open(summary_path, encoding="utf-8") as f:
            return model_path, json.load(f)
    from rignet_keras.training.experiment import run_experiment

    config = run_config(cfg, work_dir, fixed_ui)
    run = run_experiment(config, os.path.join(work_dir, "run"), resume=True, progress=progress)
    run.network.save(model_path)
    summary = {
        "label": config.label(),
        "train_seconds": round(run.summary["train_seconds"], 1),
        "keras_mIoU": {str(k): s["mIoU"] for k, s in run.evaluation.scores.items()},
        "train_iterations": K if fixed_ui else [1, K],
        "steps": cfg.steps,
    }
    write_json(summary_path, summary)
    return model_path, summary


def export(model_path, work_dir, cfg, precisions):
    """Exports (or reuses) the step-wise TFLite graphs; returns the manifest."""
    from rignet_keras.data.synthetic import SyntheticConfig, make_synthetic
    from rignet_keras.export import export_model, load_manifest

    folder = os.path.join(work_dir, "export")
    if os.path.isfile(os.path.join(folder, "manifest.json")):
        return load_manifest(folder)
    synthetic = run_config(cfg, work_dir).data.synthetic
    calibration, _ = make_synthetic(16, SEED, SyntheticConfig(**synthetic), "train")
    return export_model(
        model_path,
        folder,
        input_size=cfg.image_size,
        uis=tuple(range(1, K + 1)),
        precisions=precisions,
        stepwise_iterations=K,
        representative_data=calibration,
        num_calibration_images=16,
        latency_runs=0,
        threads=1,
    )


def validation_set(cfg, work_dir):
    """The run's validation images and labels (the evaluation's in-memory synthetic split)."""
    from rignet_keras.data.synthetic import SyntheticConfig, make_synthetic

    synthetic = run_config(cfg, work_dir).data.synthetic
    return make_synthetic(cfg.num_val, 0, SyntheticConfig(**synthetic), "val")


def record(manifest, precision, images, work_dir):
    """Runs `init` and K - 1 steps of the step-wise TFLite graph on every image (cached), through
    the runtime's stepping loop (`AnytimeSegmenter.iterate`), timing each iteration.

    Returns:
        (class maps uint8 (N, K, H, W), probabilities float16 (N, K, H, W, C), init ms, step
        ms): the outputs after every iteration.
    """
    from rignet_runtime import AnytimeSegmenter, find_stepwise

    path = os.path.join(work_dir, f"records_{precision}_{len(images)}.npz")
    if os.path.isfile(path):
        data = np.load(path)
        return data["maps"], data["probs"], float(data["init_ms"]), float(data["step_ms"])
    anytime = AnytimeSegmenter(find_stepwise(manifest, precision), threads=1)
    anytime.warm_up()
    maps, probs, init_ms, step_ms = [], [], [], []
    for image in images:
        iterations, outputs = anytime.iterate(image, K), []
        for k in range(K):  # an iteration runs when asked for: `next` takes its time
            start = time.perf_counter()
            outputs.append(next(iterations))
            (step_ms if k else init_ms).append(time.perf_counter() - start)
        maps.append(np.stack([o["class_map"][0] for o in outputs]).astype(np.uint8))
        probs.append(np.stack([o["probabilities"][0] for o in outputs]).astype(np.float16))
    maps, probs = np.stack(maps), np.stack(probs)
    init_ms, step_ms = 1000 * float(median(init_ms)), 1000 * float(median(step_ms))
    write_npz(path, dict(maps=maps, probs=probs, init_ms=init_ms, step_ms=step_ms))
    return maps, probs, init_ms, step_ms


def miou(labels, predictions, num_classes):
    """(mIoU, pixel accuracy) of class maps against labels, with the one mIoU."""
    from rignet_keras.confusion import confusion_matrix, segmentation_scores

    scores = segmentation_scores(confusion_matrix(labels, predictions, num_classes))
    return scores["mIoU"], scores["pAcc"]


def sweep_rules():
    """(family, StoppingRule) pairs of the sweep."""
    from rignet_runtime.stopping import StoppingRule

    rules = [("none", StoppingRule(test="none"))]
    for tol in (0.0, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1):
        rules.append(("stable", StoppingRule(test="stable", stable_tolerance=tol)))
    for p in (0.8, 0.9, 0.95, 0.99):
        for tol in (0.0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5):
            rules.append((f"confident p={p:g}", StoppingRule("confident", 0.0, p, tol)))
    for stable in (0.0, 0.002, 0.01):
        for tol in (0.02, 0.05, 0.1, 0.2):
            rules.append(("both p=0.9", StoppingRule("both", stable, 0.9, tol)))
            rules.append(("either p=0.9", StoppingRule("either", stable, 0.9, tol)))
    return rules


def evaluate_rule(rule, maps, probs, labels, num_classes, macs):
    """What one rule does on the recorded runs: passes, savings, mIoU of its predictions."""
    used, reasons = [], {}
    for image_maps, image_probs in zip(maps, probs, strict=True):
        k, reason = rule.replay(image_maps, image_probs.astype(np.float32))
        used.append(k)
        reasons[reason] = reasons.get(reason, 0) + 1
    used = np.asarray(used)
    stopped = maps[np.arange(len(maps)), used - 1]
    value, accuracy = miou(labels, stopped, num_classes)
    gated = used - 1
    spent = macs["init"] + gated * macs["step"]
    full = macs["init"] + (K - 1) * macs["step"]
    return {
        "rule": rule.to_dict(),
        "mean_passes": float(used.mean()),
        "passes_histogram": {str(k): int((used == k).sum()) for k in range(1, K + 1)},
        "gated_passes_saved": float(1 - gated.mean() / (K - 1)),
        "macs_beyond_ui1_saved": float(
            1 - (gated * macs["step"]).mean() / ((K - 1) * macs["step"])
        ),
        "macs_saved": float(1 - spent.mean() / full),
        "miou": value,
        "pixel_accuracy": accuracy,
        "stop_reasons": reasons,
    }


def signature_macs(manifest, precision):
    """{"init": MACs, "step": MACs} of the step-wise graph, from the manifest."""
    for artifact in manifest["artifacts"]:
        if artifact.get("kind") == "stepwise" and artifact["precision"] == precision:
            return {s["name"]: int(s["macs"]) for s in artifact["signatures"]}
    raise ValueError(f"no step-wise {precision} graph in the manifest")


def analyse(maps, probs, labels, num_classes, macs, select, report):
    """The sweep: thresholds chosen on the `select` images, scored on the `report` images."""
    fixed = {}
    for k in range(1, K + 1):
        value, accuracy = miou(labels[report], maps[report, k - 1], num_classes)
        fixed[str(k)] = {"miou": value, "pixel_accuracy": accuracy}
    best_ui = max(fixed, key=lambda k: fixed[k]["miou"])
    selection_k = miou(labels[select], maps[select, K - 1], num_classes)[0]
    rows = []
    for family, rule in sweep_rules():
        row = evaluate_rule(rule, maps[report], probs[report], labels[report], num_classes, macs)
        chosen = evaluate_rule(rule, maps[select], probs[select], labels[select], num_classes, macs)
        row["family"] = family
        row["selection_half"] = {
            "miou": chosen["miou"],
            "macs_beyond_ui1_saved": chosen["macs_beyond_ui1_saved"],
            "miou_lost_vs_ui_k": selection_k - chosen["miou"],
        }
        row["miou_lost_vs_ui_k"] = fixed[str(K)]["miou"] - row["miou"]
        row["miou_lost_vs_best_ui"] = fixed[best_ui]["miou"] - row["miou"]
        row["meets_goal"] = bool(
            row["macs_beyond_ui1_saved"] >= GOAL_SAVED and row["miou_lost_vs_ui_k"] <= GOAL_LOSS
        )
        rows.append(row)
    chosen = {}
    for row in rows:
        sel = row["selection_half"]
        if sel["miou_lost_vs_ui_k"] > GOAL_LOSS:
            continue
        best = chosen.get(row["family"])
        if (
            best is None
            or sel["macs_beyond_ui1_saved"] > best["selection_half"]["macs_beyond_ui1_saved"]
        ):
            chosen[row["family"]] = row
    return {
        "fixed_ui": fixed,
        "best_ui": int(best_ui),
        "rules": rows,
        "chosen_on_selection_half": chosen,
        "default": default_rule(rows),
    }


def default_rule(rows):
    """The runtime's default, chosen on the selection half: the most conservative stability
    rule (the smallest tolerance) that meets the goal there (>= GOAL_SAVED of the MACs beyond
    ui = 1 saved for <= GOAL_LOSS mIoU lost against ui = K); if none does, the stability rule
    that saves the most within GOAL_LOSS."""
    stable = [r for r in rows if r["family"] == "stable"]
    sel = [r["selection_half"] for r in stable]
    meeting = [
        r
        for r, h in zip(stable, sel, strict=True)
        if h["macs_beyond_ui1_saved"] >= GOAL_SAVED and h["miou_lost_vs_ui_k"] <= GOAL_LOSS
    ]
    if meeting:
        row = min(meeting, key=lambda r: r["rule"]["stable_tolerance"])
        why = "the smallest stability tolerance meeting the goal on the selection half"
    else:
        within = [r for r in stable if r["selection_half"]["miou_lost_vs_ui_k"] <= GOAL_LOSS]
        row = max(within, key=lambda r: r["selection_half"]["macs_beyond_ui1_saved"])
        why = "no stability rule met the goal on the selection half: the one saving the most"
    return {
        "rule": row["rule"],
        "why": why,
        "report_half": {
            k: row[k]
            for k in (
                "mean_passes",
                "macs_beyond_ui1_saved",
                "miou",
                "miou_lost_vs_ui_k",
                "miou_lost_vs_best_ui",
                "meets_goal",
                "stop_reasons",
            )
        },
    }


GOAL_SAVED = 0.40
GOAL_LOSS = 0.005


def plot(result, path, title):
    """mIoU of the stopped predictions against the share of MACs beyond ui = 1 saved."""
    from rignet_keras.training.plots import pyplot

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    families = {}
    for row in result["rules"]:
        families.setdefault(row["family"], []).append(row)
    for family, rows in families.items():
        rows = sorted(rows, key=lambda r: r["macs_beyond_ui1_saved"])
        x = [100 * r["macs_beyond_ui1_saved"] for r in rows]
        y = [100 * r["miou"] for r in rows]
        ax.plot(x, y, marker="o", markersize=3, label=family, linewidth=1)
    fixed = result["fixed_ui"]
    for k, entry in fixed.items():
        saved = 100 * (K - int(k)) / (K - 1)
        ax.scatter([saved], [100 * entry["miou"]], marker="s", color="black", zorder=5)
        ax.annotate(
            f"ui={k}",
            (saved, 100 * entry["miou"]),
            fontsize=7,
            xytext=(3, 3),
            textcoords="offset points",
        )
    default = result["default"]["report_half"]
    ax.scatter(
        [100 * default["macs_beyond_ui1_saved"]],
        [100 * default["miou"]],
        marker="*",
        s=160,
        color="red",
        zorder=6,
        label=f"default (stable <= {result['default']['rule']['stable_tolerance']:g})",
    )
    target = 100 * (fixed[str(K)]["miou"] - GOAL_LOSS)
    ax.axhline(target, color="grey", linestyle="--", linewidth=0.8)
    ax.axvline(100 * GOAL_SAVED, color="grey", linestyle="--", linewidth=0.8)
    ax.set_xlabel("multiply-adds beyond ui=1 saved (%)")
    ax.set_ylabel("mIoU of the stopped predictions (%)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = bench_parser(
        __doc__,
        work_dir=None,
        helps={
            "work_dir": "the model, export and records (default: "
            "/tmp/rignet_bench_stopping_<steps>, _fixed added with --fixed-ui)"
        },
    )
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--num-val", type=int, default=NUM_VAL)
    parser.add_argument("--stage", choices=("train", "all"), default="all")
    parser.add_argument("--precisions", nargs="+", default=["float32", "int8"])
    parser.add_argument(
        "--fixed-ui",
        action="store_true",
        help=f"train at ui = {K} only (default: the ui drawn from [1, {K}] at every step)",
    )
    parser.add_argument(
        "--tag", default="", help="a suffix of the result files' names (stopping_TAG.json)"
    )
    args = parser.parse_args(argv)
    set_tf_threads(1)
    args.work_dir = args.work_dir or default_work_dir(args.steps, args.fixed_ui)
    os.makedirs(args.work_dir, exist_ok=True)
    cfg = quickstart_config(args.steps, args.num_val)
    start = time.time()
    model_path, summary = train(cfg, args.work_dir, progress=False, fixed_ui=args.fixed_ui)
    print(f"trained {model_path} ({summary['train_seconds']} s): {summary['keras_mIoU']}")
    if args.stage == "train":
        return 0
    precisions = tuple(args.precisions)
    manifest = export(model_path, args.work_dir, cfg, precisions)
    images, labels = validation_set(cfg, args.work_dir)
    num_classes = cfg.num_classes
    half = len(images) // 2
    select, report = np.arange(half), np.arange(half, len(images))
    results = {
        "command": command_line("stopping", argv),
        "machine": machine(),
        "model": summary,
        "K": K,
        "num_val": len(images),
        "protocol": (
            "thresholds are swept on the first half of the validation images (selection) "
            "and every figure is reported on the second half (report); the default is chosen "
            "on the selection half"
        ),
        "goal": {"macs_beyond_ui1_saved": GOAL_SAVED, "max_miou_lost_vs_ui_k": GOAL_LOSS},
        "precisions": {},
    }
    for precision in precisions:
        maps, probs, init_ms, step_ms = record(manifest, precision, images, args.work_dir)
        macs = signature_macs(manifest, precision)
        result = analyse(maps, probs, labels, num_classes, macs, select, report)
        result.update(macs=macs, median_init_ms=init_ms, median_step_ms=step_ms)
        results["precisions"][precision] = result
        prefix = f"stopping_{args.tag}_" if args.tag else "stopping_"
        name = f"{prefix}{precision}.png"
        plot(
            result,
            os.path.join(RESULTS_DIR, name),
            f"{summary['label']}, "
            + (f"trained at ui {K}, " if args.fixed_ui else f"random ui [1, {K}], ")
            + f"{summary['steps']} steps; TFLite step-wise {precision}, {len(report)} val images",
        )
        print_table(precision, result)
        print(f"default: {result['default']}")
    results["seconds"] = round(time.time() - start, 1)
    out = os.path.join(RESULTS_DIR, f"stopping_{args.tag}.json" if args.tag else "stopping.json")
    write_json(out, results)
    print(f"wrote {out}")
    return 0


def print_table(precision, result):
    fixed = result["fixed_ui"]
    print(
        f"\n{precision}: mIoU at fixed ui "
        + ", ".join(f"{k}: {100 * v['miou']:.2f}" for k, v in fixed.items())
        + f"; best ui {result['best_ui']}"
    )
    print(f"{'rule':58s} {'passes':>6s} {'saved':>6s} {'mIoU':>6s} {'lost':>6s}")
    for row in result["rules"]:
        rule = row["rule"]
        text = (
            f"{rule['test']} stable<={rule['stable_tolerance']:g} p={rule['confidence']:g} "
            f"uncertain<={rule['uncertain_tolerance']:g}"
        )
        print(
            f"{text:58s} {row['mean_passes']:6.2f} {100 * row['macs_beyond_ui1_saved']:5.1f}% "
            f"{100 * row['miou']:6.2f} {100 * row['miou_lost_vs_ui_k']:+6.2f}"
            + ("  goal" if row["meets_goal"] else "")
        )


if __name__ == "__main__":
    sys.exit(main())
