"""Does feedback reach where the feed-forward network does not? The synthetic task against its
long-range variant, accuracy by distance from the mark, and the effective receptive field.

On the synthetic task an object's class is visible only in its mark, so every other pixel of
the object must be labelled from evidence some distance away. The standard task (the claims
sweep's: blobs 40-60% of the image across, the mark anywhere inside) keeps most object pixels
near their mark; its long-range variant (`SyntheticConfig(object_shape="bar",
mark_position="end")`: bars 70-90% of the image long with the mark at one end) puts much of
each object far from its mark, so that the accuracy by distance can be set beside the
effective receptive field (ERF) of the feed-forward network and of each iteration.

On both, with the claims sweep's budget (`bench.claims.Budget`: narrow ResNet-18 x0.25, 300 SGD
steps of batch 8, 800 training and 128 validation images of 96 px, 3 classes, 10 px marks),
at output stride 8 (B4 and B5 dilated: the image is 12x12 cells at the head, so the reach is
the network's, not one 32-pixel cell's), for each seed it trains

    fcn       the feed-forward ResNet-18 (RIGNet without gates, ui = 1)
    pu3       RIGNet Pu<6..4> trained at ui = 3
    pu_rand   RIGNet Pu<6..4>, ui drawn per step in [1, 3] (random-ui training)

with the one runner (`run_experiment`), and measures on the validation images at every ui:
mIoU, the accuracy of object pixels binned by their distance from their mark
(`synthetic.mark_distance`), and the ERF of the centre pixel (`bench.receptive_field`).
Results are written after every run, so an interrupted sweep resumes where it stopped.

    python -m bench.long_range                       # every run (resumable)
    python -m bench.long_range --models fcn pu3      # a subset
    python -m bench.receptive_field --mark-share     # the far pixels' ERF on their mark
    python -m bench.long_range --report              # tables, plots, the variant's sample grid
"""

import dataclasses
import os
import sys
import time

from bench import receptive_field
from bench.claims import Budget
from bench.common import (
    REPOSITORY_ROOT,
    RESULTS_DIR,
    bench_parser,
    command_line,
    format_mean_sd,
    load_results,
    machine,
    mean_sd,
    set_tf_threads,
    write_json,
)
from bench.long_range_files import DEFAULT_WORK_DIR, ResultFiles, run_folder

TASKS = {
    "standard": dict(object_size=(0.4, 0.6)),
    "long_range": dict(object_size=(0.7, 0.9), object_shape="bar", mark_position="end"),
}
MODELS = {
    "fcn": dict(feedback_blocks=None, num_iterations=1),
    "pu3": dict(feedback_blocks=(4, 6), num_iterations=3),
    "pu_rand": dict(feedback_blocks=(4, 6), num_iterations=3, train_iterations=(1, 3)),
}
LABELS = {
    "fcn": "FCN",
    "pu3": "Pu<6..4> ui=3",
    "pu_rand": "Pu<6..4> ui~[1,3]",
}
# Distance bins (pixels from the nearest mark pixel), the last one open.
BIN_EDGES = (0, 8, 16, 24, 32, 48, 64)
OUTPUT_STRIDE = 8
ERF_IMAGES = 32


def synthetic_options(task, budget):
    """The `SyntheticConfig` fields of a task under the budget."""
    size = (budget.image_size, budget.image_size)
    return dict(
        image_size=size,
        num_classes=budget.num_classes,
        mark_size=budget.mark_size,
        objects_per_image=(1, 2),
        **TASKS[task],
    )


def run_config(task, model, seed, budget):
    """The `RunConfig` of one run: the claims sweep's training on `task`'s data."""
    from rignet_keras.config import DataConfig, RunConfig

    spec = dict(MODELS[model])
    train_iterations = spec.pop("train_iterations", None)
    net = dict(
        backbone="resnet18",
        backbone_weights=None,
        width_multiplier=budget.width_multiplier,
        head_filters=max(8, round(512 * budget.width_multiplier)),
        output_stride=OUTPUT_STRIDE,
        unroll_mode="parallel",
        recurrent_batch_norm="gated_passes",
        **spec,
    )
    data = DataConfig(
        source="synthetic",
        crop_size=None,
        eval_batch_size=16,
        num_train_samples=budget.num_train,
        num_eval_samples=budget.num_val,
        synthetic=synthetic_options(task, budget),
    )
    train = budget.train_config(seed, train_iterations=train_iterations)
    config = RunConfig(model=net, data=data, train=train, eval=budget.eval_config())
    config.name = f"{task}-{model}"
    config.description = f"ResNet-18 x{budget.width_multiplier} {LABELS[model]}, {task} task"
    return config


def validation_samples(task, budget):
    """(images uint8 (N, H, W, 3), masks uint8 (N, H, W), distances float32 (N, H, W)) of the
    validation split the runner evaluates on (seed 0)."""
    import numpy as np

    from rignet_keras.data.synthetic import SyntheticConfig, generate_sample, mark_distance

    config = SyntheticConfig(**synthetic_options(task, budget))
    samples = [generate_sample(0, i, config, "val") for i in range(budget.num_val)]
    return (
        np.stack([s.image for s in samples]),
        np.stack([s.mask for s in samples]),
        np.stack([mark_distance(s) for s in samples]),
    )


def accuracy_by_distance(network, images, masks, distances, iterations, batch_size=16):
    """{ui: {"correct": [per bin], "total": [per bin]}} over labelled object pixels, every ui of
    a batch read from one unroll at the largest (`receptive_field.logits_by_ui`)."""
    import numpy as np

    edges = np.array(BIN_EDGES[1:])
    labelled = (masks > 0) & (masks != 255) & ~np.isnan(distances)
    bins = np.digitize(np.nan_to_num(distances), edges)
    n_bins = len(BIN_EDGES)
    total = np.bincount(bins[labelled], minlength=n_bins)
    predictions = {k: [] for k in iterations}
    for i in range(0, len(images), batch_size):
        batch = images[i : i + batch_size]
        for k, logits in receptive_field.logits_by_ui(network, batch, iterations).items():
            predictions[k].append(np.argmax(logits, -1))
    out = {}
    for k in iterations:
        preds = np.concatenate(predictions[k])
        right = labelled & (preds == masks)
        correct = np.bincount(bins[right], minlength=n_bins)
        out[str(k)] = {"correct": correct.tolist(), "total": total.tolist()}
    return out


def one_run(task, model, seed, budget, work_dir, files):
    """Trains and measures one run; returns its record (and records its ERF in `files`)."""
    from rignet_keras.training.experiment import run_experiment

    config = run_config(task, model, seed, budget)
    folder = run_folder(work_dir, task, model, seed, budget.steps)
    run = run_experiment(config, folder, resume=True, progress=False)
    network = run.network
    iterations = list(range(1, network.num_iterations + 1))
    images, masks, distances = validation_samples(task, budget)
    t0 = time.time()
    by_distance = accuracy_by_distance(network, images, masks, distances, iterations)
    erf = receptive_field.measure(network, images[:ERF_IMAGES], iterations, network.preprocessing)
    receptive_field.record(
        files,
        task,
        model,
        seed,
        erf,
        setup={
            "pixel": "centre",
            "class": "predicted",
            "images": f"the first {ERF_IMAGES} validation images of each task",
            "networks": "bench.long_range's runs (final weights)",
        },
    )
    scores = run.evaluation.scores
    return {
        "mIoU": {str(k): s["mIoU"] for k, s in scores.items()},
        "by_distance": by_distance,
        "erf": {str(k): {n: v for n, v in m.items() if n != "map"} for k, m in erf.items()},
        "train_seconds": round(run.summary["train_seconds"] or 0.0, 1),
        "measure_seconds": round(time.time() - t0, 1),
        "loss_by_third": run.summary["loss"],
    }


# ---------------------------------------------------------------------------------------------
# Report


def bin_labels():
    edges = list(BIN_EDGES)
    return [f"{a}-{b}" for a, b in zip(edges, edges[1:], strict=False)] + [f">={edges[-1]}"]


def curves(results):
    """{task: {(model, ui): (mean accuracy per bin, sd per bin, pixels per bin)}} over seeds."""
    out = {}
    for task, models in results["runs"].items():
        for model, seeds in models.items():
            uis = sorted({k for r in seeds.values() for k in r["by_distance"]}, key=int)
            for k in uis:
                per_seed = [
                    [c / t if t else None for c, t in zip(d["correct"], d["total"], strict=True)]
                    for d in (r["by_distance"][k] for r in seeds.values() if k in r["by_distance"])
                ]
                stats = [mean_sd(col) for col in zip(*per_seed, strict=True)]
                pixels = next(iter(seeds.values()))["by_distance"][k]["total"]
                out.setdefault(task, {})[(model, int(k))] = (stats, pixels, len(per_seed))
    return out


def markdown(results):
    """mIoU per ui and accuracy by distance per ui (mean ± sd over seeds, %)."""
    lines = ["**mIoU (%) by ui**", "", "| task | model | seeds | ui=1 | ui=2 | ui=3 |"]
    lines.append("|---|---|---|---|---|---|")
    for task, models in results["runs"].items():
        for model, seeds in models.items():
            cells = []
            for k in ("1", "2", "3"):
                s = mean_sd([r["mIoU"].get(k) for r in seeds.values()])
                cells.append(format_mean_sd(s, scale=100))
            lines.append(f"| {task} | {LABELS[model]} | {len(seeds)} | " + " | ".join(cells) + " |")
    labels = bin_labels()
    for task, rows in curves(results).items():
        pixels = next(iter(rows.values()))[1]
        share = [100 * p / max(1, sum(pixels)) for p in pixels]
        lines += [
            "",
            f"**{task}: accuracy (%) of object pixels by distance from their mark (px)**",
            "",
            "| model | ui | seeds | " + " | ".join(labels) + " |",
            "|---|---|---|" + "---|" * len(labels),
            "| (share of object pixels) | | | " + " | ".join(f"{s:.0f}%" for s in share) + " |",
        ]
        for (model, k), (stats, _, n) in sorted(rows.items()):
            cells = [format_mean_sd(s, scale=100) for s in stats]
            lines.append(f"| {LABELS[model]} | {k} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_by_distance(results, path):
    """Accuracy against distance from the mark, one panel per task, one line per (model, ui)."""
    import numpy as np

    from rignet_keras.training.plots import pyplot

    plt = pyplot()
    data = curves(results)
    fig, axes = plt.subplots(1, len(data), figsize=(5.5 * len(data), 4), dpi=120, squeeze=False)
    centres = [(a + b) / 2 for a, b in zip(BIN_EDGES, BIN_EDGES[1:], strict=False)]
    centres.append(BIN_EDGES[-1] + 8)
    colors = {"fcn": "black", "pu3": "tab:blue", "pu_rand": "tab:orange"}
    styles = {1: ":", 2: "--", 3: "-"}
    panels = sorted(data.items(), key=lambda item: list(TASKS).index(item[0]))
    for ax, (task, rows) in zip(axes[0], panels, strict=True):
        for (model, k), (stats, _pixels, _) in sorted(rows.items()):
            xs = [x for x, s in zip(centres, stats, strict=True) if s is not None]
            ys = [100 * s[0] for s in stats if s is not None]
            ax.plot(
                xs,
                ys,
                color=colors.get(model, "grey"),
                ls=styles.get(k, "-"),
                marker="o",
                ms=3,
                label=f"{LABELS[model]}" + (f", ui={k}" if model != "fcn" else ""),
            )
        erf = results.get("fcn_r90", {}).get(task)
        if erf:
            ax.axvline(erf, color="grey", lw=0.8)
            ax.text(erf, 2, " FCN ERF r90", fontsize=7, color="grey")
        ax.set_title(f"{task}: object pixels by distance from their mark", fontsize=9)
        ax.set_xlabel("distance from the mark (px, bin centre)")
        ax.set_ylabel("pixel accuracy (%)")
        ax.set_ylim(0, 100)
        ax.set_xticks(np.array(centres))
        ax.set_xticklabels(bin_labels(), fontsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def report(results, budget, files):
    """Prints the tables of the runs and the ERFs in `files`; writes the plots and the long-range
    variant's sample grid there (and into docs/ when `files` is the default folder)."""
    from rignet_keras.data.synthetic import SyntheticConfig, save_sample_grid

    erf_results = load_results(files.erf)
    radii = receptive_field.summary(erf_results)
    fcn_r90 = {
        task: models["fcn"][1]["r90"]["mean"] for task, models in radii.items() if "fcn" in models
    }
    results = dict(results, fcn_r90=fcn_r90)
    print(markdown(results))
    print()
    print(receptive_field.markdown(erf_results))
    paths = [
        plot_by_distance(results, files.path("long_range_by_distance.png")),
        receptive_field.plot(files, labels=LABELS),
    ]
    config = SyntheticConfig(**synthetic_options("long_range", budget))
    grids = [files.path("long_range_samples.png")]
    if files.folder == RESULTS_DIR:  # the picture docs/DATA.md shows
        grids.append(os.path.join(REPOSITORY_ROOT, "docs", "synthetic_long_range_samples.png"))
    for path in grids:
        paths.append(save_sample_grid(path, num_samples=8, seed=0, config=config))
    for path in paths:
        print("wrote", path)


def main(argv=None):
    p = bench_parser(
        __doc__,
        full_doc=True,
        seeds=[0, 1, 2],
        threads=1,
        work_dir=DEFAULT_WORK_DIR,
        helps={"threads": "TF intra- and inter-op threads (default: %(default)s)"},
    )
    p.add_argument("--tasks", nargs="+", choices=list(TASKS), default=list(TASKS))
    p.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    p.add_argument("--report", action="store_true", help="print the tables and write the PNGs")
    p.add_argument("--steps", type=int, default=Budget.steps, help="training steps per run")
    p.add_argument("--results-dir", default=RESULTS_DIR, help="where the JSON and PNG results go")
    args = p.parse_args(argv)
    files = ResultFiles(args.results_dir)
    budget = Budget(steps=args.steps)
    results = load_results(files.long_range)
    stored = results.get("budget")
    if stored not in (None, dataclasses.asdict(budget)):
        print(f"error: {files.long_range} holds runs of another budget ({stored})", file=sys.stderr)
        return 2
    if args.report:
        report(results, budget, files)
        return 0

    set_tf_threads(args.threads)
    results.update(
        budget=dataclasses.asdict(budget),
        output_stride=OUTPUT_STRIDE,
        tasks={t: synthetic_options(t, budget) for t in TASKS},
        bins_px=list(BIN_EDGES),
        command=command_line("long_range", argv),
    )
    results.setdefault("machine", machine())
    # The FCN and ui=3 RIGNet of every seed before any random-ui run (the most optional).
    order = [(s, t, m) for m in args.models for s in args.seeds for t in args.tasks]
    for seed, task, model in order:
        if str(seed) in results["runs"].get(task, {}).get(model, {}):
            continue
        t0 = time.time()
        record = one_run(task, model, seed, budget, args.work_dir, files)
        record["threads"] = args.threads
        record["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        results["runs"].setdefault(task, {}).setdefault(model, {})[str(seed)] = record
        write_json(files.long_range, results)
        far = record["by_distance"][max(record["by_distance"], key=int)]
        pairs = zip(far["correct"], far["total"], strict=True)
        acc = [c / t if t else float("nan") for c, t in pairs]
        print(
            f"{task} {model} seed {seed}: mIoU by ui "
            + " ".join(f"{100 * v:.1f}" for v in record["mIoU"].values())
            + f"; accuracy by distance at ui={max(record['by_distance'], key=int)} "
            + " ".join(f"{100 * a:.0f}" for a in acc)
            + "; ERF r50/r90 "
            + ", ".join(f"{e['r50']:.0f}/{e['r90']:.0f}" for e in record["erf"].values())
            + f" ({time.time() - t0:.0f} s)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
