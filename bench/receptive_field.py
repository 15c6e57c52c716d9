"""Effective receptive field of trained networks: the FCN and the RIGNet at each ui.

For one output pixel (the image centre) the ERF is |d logit / d image| (the logit of the class
predicted there), summed over channels and averaged over validation images
(`rignet_keras.receptive_field`); it is summarised by the radii of the discs about the pixel
that hold 50% and 90% of its mass. The networks are those trained by `bench.long_range` (which
calls `measure` after each run and `record` to store it), on the standard synthetic task and on
its long-range variant, so that the radii can be set beside the distances at which each network
still labels an object from its mark.

    python -m bench.long_range                  # trains, evaluates, measures (resumable)
    python -m bench.receptive_field --mark-share    # the far pixels' ERF on their mark
    python -m bench.receptive_field --report    # the tables and results/receptive_field.png

`--mark-share` rebuilds each finished run from its folder and asks whether the prediction far
from the evidence depends on the evidence: for each image's object pixel farthest from its
mark, the share of that pixel's ERF lying on its own mark (`mark_share`).

Results: `results/receptive_field.json` (radii per task, model, seed and ui) and
`results/receptive_field_maps.npz` (each map normalised to sum 1, float16, keyed
"task/model/seed/ui").
"""

import os
import sys

from bench.common import (
    RESULTS_DIR,
    bench_parser,
    format_mean_sd,
    load_results,
    machine,
    mean_sd,
    set_tf_threads,
    write_json,
    write_npz,
)
from bench.long_range_files import DEFAULT_WORK_DIR, ResultFiles, run_folder

FRACTIONS = (0.5, 0.9)


def measure(network, images, iterations, preprocessing):
    """The ERF of the centre pixel of `network` at each ui.

    Args:
        network: a trained `RIGNet`.
        images: uint8 (N, H, W, 3) validation images.
        iterations: the ui values to measure.
        preprocessing: the model's normalisation mode (the gradient is taken with respect to
            the normalised image).

    Returns:
        {ui: {"map": float64 (H, W) normalised to sum 1, "r50": px, "r90": px}}.
    """
    import numpy as np

    from rignet_keras.preprocessing import normalize
    from rignet_keras.receptive_field import effective_receptive_field, mass_radius

    x = np.asarray(normalize(images.astype("float32"), preprocessing))
    out = {}
    for k in iterations:
        # A gradient per ui: the ERF of iteration k's logits needs its own backward pass.
        erf = effective_receptive_field(
            lambda b, k=k: network(b, num_iterations=k, training=False), x
        )
        erf = erf / erf.sum()
        out[k] = {"map": erf, **{f"r{round(100 * f)}": mass_radius(erf, f) for f in FRACTIONS}}
    return out


def far_pixels(masks, distances, inset=3):
    """(pixels int (N, 2), classes int (N,), distances (N,)): in each image, the labelled object
    pixel farthest from its mark among those at least `inset` pixels inside the object (away
    from the outline, whose pixels are hard whatever the evidence), its class and that
    distance."""
    import numpy as np
    from scipy import ndimage

    n = len(masks)
    pixels, classes, far = np.zeros((n, 2), np.int64), np.zeros(n, np.int64), np.zeros(n)
    for i in range(n):
        inside = ndimage.binary_erosion((masks[i] > 0) & (masks[i] != 255), iterations=inset)
        d = np.where(inside, np.nan_to_num(distances[i], nan=-1), -1)
        y, x = np.unravel_index(int(np.argmax(d)), d.shape)
        pixels[i], classes[i], far[i] = (y, x), masks[i][y, x], d[y, x]
    return pixels, classes, far


def logits_by_ui(network, images, iterations):
    """{ui: float32 logits (N, H, W, C) as NumPy} of `network` on uint8 `images` at each ui in
    `iterations`, every ui read from one unroll at the largest (`logits_per_iteration`; a
    sequential-mode network, which makes one prediction per unroll, runs once per ui)."""
    import numpy as np

    from rignet_keras.training.evaluate import logits_per_iteration

    x = network.normalize_pixels(images)
    logits = logits_per_iteration(network, x, list(iterations), training=False)
    return {k: np.asarray(v) for k, v in logits.items()}


def mark_share(network, images, masks, distances, mark_boxes, iterations, preprocessing):
    """Does the prediction far from the evidence depend on the evidence? For each image's object
    pixel farthest from its mark (`far_pixels`), the share of its ERF (the logit of its true
    class) that falls on that object's mark, at each ui.

    Args:
        images, masks, distances: validation images uint8 (N, H, W, 3), masks (N, H, W) and
            `synthetic.mark_distance` maps (N, H, W).
        mark_boxes: per image, the (y0, x0, y1, x1) mark box of the object holding its far
            pixel.

    Returns:
        {ui: {"mark_share": mean share, "uniform_share": the mark's share of the image (what a
        flat map would give), "accuracy": fraction of the far pixels labelled right,
        "distance_px": their mean distance from the mark}}.
    """
    import numpy as np

    from rignet_keras.preprocessing import normalize
    from rignet_keras.receptive_field import effective_receptive_field

    pixels, classes, far = far_pixels(masks, distances)
    x = np.asarray(normalize(images.astype("float32"), preprocessing))
    h, w = masks.shape[1:]
    logits = logits_by_ui(network, images, iterations)
    out = {}
    for k in iterations:
        maps = effective_receptive_field(
            lambda b, k=k: network(b, num_iterations=k, training=False),
            x,
            pixel=pixels,
            class_index=classes,
            per_image=True,
        )
        shares = [
            m[y0:y1, x0:x1].sum() / m.sum()
            for m, (y0, x0, y1, x1) in zip(maps, mark_boxes, strict=True)
        ]
        right = [logits[k][i, y, xx].argmax() == classes[i] for i, (y, xx) in enumerate(pixels)]
        area = np.mean([(y1 - y0) * (x1 - x0) / (h * w) for y0, x0, y1, x1 in mark_boxes])
        out[str(k)] = {
            "mark_share": float(np.mean(shares)),
            "uniform_share": float(area),
            "accuracy": float(np.mean(right)),
            "distance_px": float(np.mean(far)),
        }
    return out


def load_maps(files):
    """{"task/model/seed/ui": float16 map} of the study's maps file; {} when there is none."""
    import numpy as np

    if not os.path.isfile(files.maps):
        return {}
    with np.load(files.maps) as z:
        return {k: z[k] for k in z.files}


def record(files, task, model, seed, measured, setup):
    """Stores one run's `measure` output (radii in the JSON, maps in the npz) in `files`."""
    import numpy as np

    results = load_results(files.erf)
    results.setdefault("machine", machine())
    results["setup"] = setup
    entry = {str(k): {n: v for n, v in m.items() if n != "map"} for k, m in measured.items()}
    results["runs"].setdefault(task, {}).setdefault(model, {})[str(seed)] = entry
    write_json(files.erf, results)
    maps = load_maps(files)
    for k, m in measured.items():
        maps[f"{task}/{model}/{seed}/{k}"] = m["map"].astype(np.float16)
    write_npz(files.maps, maps, compressed=True)


def summary(results):
    """{task: {model: {ui: {"r50": stats, "r90": stats}}}}, stats = mean, sd, n over seeds, of
    the ERF results (`load_results(files.erf)`)."""
    out = {}
    for task, models in results.get("runs", {}).items():
        for model, seeds in models.items():
            uis = sorted({k for s in seeds.values() for k in s}, key=int)
            for k in uis:
                row = {}
                for r in ("r50", "r90"):
                    values = [s[k][r] for s in seeds.values() if k in s]
                    mean, sd = mean_sd(values)
                    row[r] = {"mean": mean, "sd": sd, "n": len(values)}
                out.setdefault(task, {}).setdefault(model, {})[int(k)] = row
    return out


def markdown(results):
    """The radii of the ERF results as a Markdown table (mean ± sd over seeds, pixels), and the
    mark shares when measured."""
    s = summary(results)
    lines = [
        "| task | model | ui | r50 (px) | r90 (px) | seeds |",
        "|---|---|---|---|---|---|",
    ]
    for task, models in s.items():
        for model, uis in models.items():
            for k, row in uis.items():
                r50, r90 = row["r50"], row["r90"]
                lines.append(
                    f"| {task} | {model} | {k} | {format_mean_sd(r50)} | "
                    f"{format_mean_sd(r90)} | {r50['n']} |"
                )
    shares = results.get("mark_share", {})
    if shares:
        lines += [
            "",
            "| task | model | ui | seeds | far pixel's distance (px) | ERF share on its mark (%) "
            "| flat map's share (%) | far pixels right (%) |",
            "|---|---|---|---|---|---|---|---|",
        ]
    for task, models in shares.items():
        for model, seeds in models.items():
            for k in sorted({k for v in seeds.values() for k in v}, key=int):
                rows = [v[k] for v in seeds.values() if k in v]

                def ms(name, rows=rows):
                    return format_mean_sd(mean_sd([r[name] for r in rows], scale=100))

                lines.append(
                    f"| {task} | {model} | {k} | {len(rows)} | {rows[0]['distance_px']:.0f} | "
                    f"{ms('mark_share')} | {100 * rows[0]['uniform_share']:.1f} | "
                    f"{ms('accuracy')} |"
                )
    return "\n".join(lines)


def plot(files, path=None, labels=None):
    """The mean ERF maps (over seeds) side by side, one row per task, one column per (model,
    ui), with the 50% and 90% discs drawn; returns the PNG's path (default
    receptive_field.png in the study's folder)."""
    import numpy as np

    from rignet_keras.receptive_field import mass_radius
    from rignet_keras.training.plots import pyplot

    path = path or files.path("receptive_field.png")
    maps = load_maps(files)
    grouped = {}
    for key, m in maps.items():
        task, model, _, k = key.split("/")
        grouped.setdefault(task, {}).setdefault((model, int(k)), []).append(m.astype(np.float64))
    if not grouped:
        raise SystemExit(f"error: no maps in {files.maps}; run python -m bench.long_range first")
    columns = sorted({c for cols in grouped.values() for c in cols})
    plt = pyplot()
    fig, axes = plt.subplots(
        len(grouped),
        len(columns),
        figsize=(2.2 * len(columns), 2.7 * len(grouped)),
        dpi=80,
        squeeze=False,
    )
    rows = sorted(grouped.items(), key=lambda item: (item[0] != "standard", item[0]))
    for i, (task, cols) in enumerate(rows):
        for j, col in enumerate(columns):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if col not in cols:
                ax.axis("off")
                continue
            mean = np.mean(cols[col], axis=0)
            h, w = mean.shape
            ax.imshow(np.sqrt(mean / mean.max()), cmap="magma")
            for f, style in zip((0.5, 0.9), ("-", "--"), strict=True):
                r = mass_radius(mean, f)
                ax.add_patch(
                    plt.Circle((w // 2, h // 2), r, fill=False, color="cyan", ls=style, lw=1)
                )
            model, k = col
            name = (labels or {}).get(model, model)
            ax.set_title(f"{name}\nui={k}", fontsize=7)
            if j == 0:
                ax.set_ylabel(task, fontsize=8)
    fig.suptitle("ERF of the centre pixel (sqrt scale; circles: 50% / 90% of the mass)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def measure_mark_share(files, work_dir, num_images=32):
    """Adds `mark_share` of every finished `bench.long_range` run recorded in `files` (rebuilt
    from its folder's run_config.json and final weights) to the ERF results; resumable."""
    import numpy as np

    from rignet_keras.config import CONFIG_NAME, RunConfig
    from rignet_keras.data.synthetic import SyntheticConfig, generate_sample, mark_distance
    from rignet_keras.training.run_inputs import build_network, model_preprocessing

    runs = load_results(files.long_range)
    steps = runs.get("budget", {}).get("steps")
    for task, models in runs.get("runs", {}).items():
        config = SyntheticConfig(**runs["tasks"][task])
        samples = [generate_sample(0, i, config, "val") for i in range(num_images)]
        images = np.stack([s.image for s in samples])
        masks = np.stack([s.mask for s in samples])
        distances = np.stack([mark_distance(s) for s in samples])
        pixels, _, _ = far_pixels(masks, distances)
        boxes = [
            next(o.mark_box for o in s.objects if o.region[y, x])
            for s, (y, x) in zip(samples, pixels, strict=True)
        ]
        for model, seeds in models.items():
            for seed in seeds:
                done = load_results(files.erf).get("mark_share", {}).get(task, {}).get(model, {})
                if seed in done:
                    continue
                folder = run_folder(work_dir, task, model, seed, steps)
                run = RunConfig.load(os.path.join(folder, CONFIG_NAME))
                network = build_network(run.model, config.num_classes)
                network(images[:1], training=False)
                network.load_weights(os.path.join(folder, "checkpoints", "last.weights.h5"))
                iterations = range(1, network.num_iterations + 1)
                measured = mark_share(
                    network,
                    images,
                    masks,
                    distances,
                    boxes,
                    iterations,
                    model_preprocessing(run.model),
                )
                results = load_results(files.erf)
                results.setdefault("mark_share", {}).setdefault(task, {}).setdefault(model, {})[
                    seed
                ] = measured
                write_json(files.erf, results)
                print(
                    f"{task} {model} seed {seed}: share of the far pixel's ERF on its mark by ui "
                    + ", ".join(f"{m['mark_share']:.3f}" for m in measured.values())
                    + f" (flat map {next(iter(measured.values()))['uniform_share']:.3f}); "
                    + "accuracy "
                    + ", ".join(f"{m['accuracy']:.2f}" for m in measured.values()),
                    flush=True,
                )


def main(argv=None):
    p = bench_parser(
        __doc__,
        full_doc=True,
        threads=1,
        work_dir=DEFAULT_WORK_DIR,
        helps={
            "threads": "TF intra- and inter-op threads (default: %(default)s)",
            "work_dir": "bench.long_range's runs (default: %(default)s)",
        },
    )
    p.add_argument("--report", action="store_true", help="print the radii table and write the PNG")
    p.add_argument(
        "--mark-share",
        action="store_true",
        help="measure, for bench.long_range's finished runs, how much of the ERF of the object "
        "pixel farthest from its mark falls on the mark",
    )
    p.add_argument("--results-dir", default=RESULTS_DIR, help="where the results are")
    args = p.parse_args(argv)
    files = ResultFiles(args.results_dir)
    if not (args.report or args.mark_share):
        print(
            "error: the centre ERFs are measured by python -m bench.long_range; "
            "use --mark-share or --report",
            file=sys.stderr,
        )
        return 2
    if args.mark_share:
        set_tf_threads(args.threads)
        measure_mark_share(files, args.work_dir)
    if not args.report:
        return 0
    print(markdown(load_results(files.erf)))
    print("wrote", plot(files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
