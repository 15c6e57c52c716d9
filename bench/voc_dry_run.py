"""A full-scale dry run of `recipes/voc_r50.py` (the paper's setting) on data written here.

The recipe's configuration is used as it stands: ResNet50-RIGNet Pu<6..4>, ui = 6, ImageNet
backbone from a weights file, VOC-aug training at crop 321 and batch 16 with its augmentation,
SGD with the 30,000-step poly schedule and its 500 warm-up steps, evaluation on VOC val at every
ui. What this benchmark changes, and why:

- the data: a VOC 2012 + SBD layout of full-size images (VOC-like sizes, 281-500 px a side; JPEG
  images, palette-PNG masks with a 255 void border, SBD `cls/*.mat` masks, the split lists) that
  this benchmark writes (`--work`), since VOC and SBD cannot be downloaded here; the labels are
  the synthetic task's, so the scores mean nothing;
- the backbone weights: a randomly initialised `keras.applications.ResNet50(include_top=False)`
  saved as a `.weights.h5` file, read by the same loader as the published file;
- the length: the run keeps `train.steps=30000` (so that the learning rate is the full schedule's)
  and is stopped after `--steps` steps, once that step's checkpoint and backup are written;
- `train.steps_per_epoch` (`--steps-per-epoch`, the logging, validation and checkpoint period),
  so that a few dozen steps leave checkpoints and learning-rate rows to check;
- threads: TensorFlow's inter-op pool is one thread and its intra-op pool `--threads`.

Mixed precision is off in the recipe already (right for a CPU without bfloat16 matrix units).
After training it runs the recipe's own evaluation (`--eval-only`: scores at ui 1..6, the
predictions and gate maps of the recipe's `eval.num_visualize` images) and
`export/export_model.py` on the evaluated checkpoint. Every subprocess runs under
`/usr/bin/time -v` (peak RSS of its largest process) and a sampler of the process tree's RSS,
which stops it above `--rss-limit-gib`. The stages are resumable: a stage recorded as done in
the results file is not run again (`--redo STAGE` runs it again).

    python -m bench.voc_dry_run [--steps 24] [--steps-per-epoch 6] [--work /tmp/voc_dry_run]

Results: bench/results/voc_dry_run.json (machine, date, commands, uptime before and after).
"""

import csv
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time

import numpy as np

from bench.common import (
    REPOSITORY_ROOT,
    RESULTS_DIR,
    bench_parser,
    command_line,
    machine,
    median,
    write_json,
)

RESULT = os.path.join(RESULTS_DIR, "voc_dry_run.json")
RECIPE = os.path.join("recipes", "voc_r50.py")
STAGES = ("data", "weights", "train", "train_resume", "evaluate", "export")

# Image sizes (height, width) of the kind VOC 2012 holds: the long side 500, the short 281-375.
VOC_SIZES = (
    (375, 500),
    (500, 375),
    (333, 500),
    (500, 333),
    (281, 500),
    (366, 500),
    (400, 500),
    (500, 400),
    (338, 500),
    (375, 499),
)

# The recipe's schedule (docstring of recipes/voc_r50.py; `paper_experiment`'s TrainConfig).
RECIPE_SCHEDULE = dict(
    base=0.01, steps=30000, power=0.9, warmup=500, warmup_start=0.1, backbone_factor=0.1
)

# The GPU figures this machine can scale from: BENCHMARKS.md "Training on a GPU (NVIDIA H100 ...)",
# ResNet-50 RIGNet Pu<6..4> ui=6, batch 16, crop 321, Keras 3 on JAX, random arrays in host memory.
GPU_REFERENCE = {
    "source": "BENCHMARKS.md 'Training on a GPU (NVIDIA H100 80GB HBM3, 2026-11-25)'",
    "images_per_s": {"mixed_bfloat16": 424.0, "mixed_float16": 317.0},
    "fcn_images_per_s": {"mixed_bfloat16": 1076.0, "mixed_float16": 606.0},
    "gmac_per_image": {"rignet_ui6": 46.44, "fcn": 9.75},
}


# --------------------------------------------------------------------------------------------
# The data and the weights


def voc_like_ids(prefix, count, start=0):
    """VOC-style ids (`2008_000123`)."""
    return [f"{prefix}_{start + i:06d}" for i in range(count)]


def write_voc_and_sbd(data_dir, num_voc_train, num_val, num_sbd, seed=0):
    """Writes `data_dir/VOCdevkit/VOC2012` (JPEGImages, SegmentationClass palette PNGs with the
    void border, ImageSets/Segmentation/{train,val,trainval}.txt) and
    `data_dir/benchmark_RELEASE/dataset` (img, cls/*.mat without void, {train,val}.txt).

    The SBD lists overlap VOC's as the real ones do: a quarter of SBD's images are VOC train
    images, and two of them are VOC val images (which the voc_aug list must leave out).

    Returns:
        {"voc_train", "voc_val", "sbd_train", "sbd_val", "voc_aug_train", "sizes"}.
    """
    from rignet_keras.data.sbd import aug_train_ids
    from rignet_keras.data.synthetic import SyntheticConfig, generate_sample
    from rignet_keras.data.voc_layout import VOCLayoutWriter

    writer = VOCLayoutWriter(data_dir, quality=90)
    voc_train = voc_like_ids("2007", num_voc_train)
    voc_val = voc_like_ids("2008", num_val)
    shared = voc_train[: max(1, num_sbd // 4)]
    sbd_only = voc_like_ids("2009", num_sbd - len(shared) - 2)
    sbd_all = shared + voc_val[:2] + sbd_only
    sbd_train, sbd_val = sbd_all[::2] + sbd_all[1::4], sbd_all[3::4]

    sizes = {}
    samples = {}

    def sample(sample_id, index):
        if sample_id not in samples:
            hw = VOC_SIZES[index % len(VOC_SIZES)]
            config = SyntheticConfig(image_size=hw, num_classes=21, void_border=1)
            split = "val" if sample_id.startswith("2008") else "train"
            samples[sample_id] = generate_sample(seed, index, config, split)
            sizes[sample_id] = list(hw)
        return samples[sample_id]

    order = {i: n for n, i in enumerate(dict.fromkeys(voc_train + voc_val + sbd_all))}
    for sample_id in voc_train + voc_val:
        s = sample(sample_id, order[sample_id])
        writer.voc_sample(sample_id, s.image, s.mask)
    for sample_id in sbd_all:
        s = sample(sample_id, order[sample_id])
        writer.sbd_sample(sample_id, s.image, np.where(s.mask == 255, 0, s.mask))
    writer.voc_lists({"train": voc_train, "val": voc_val, "trainval": voc_train + voc_val})
    writer.sbd_lists({"train": sbd_train, "val": sbd_val})
    return {
        "voc_train": len(voc_train),
        "voc_val": len(voc_val),
        "sbd_train": len(sbd_train),
        "sbd_val": len(sbd_val),
        "voc_aug_train": len(aug_train_ids(voc_train, sbd_train, sbd_val, voc_val)),
        "sizes_hw": sorted({tuple(v) for v in sizes.values()}),
    }


def write_resnet50_weights(path, seed=0):
    """A randomly initialised `keras.applications.ResNet50(include_top=False)` saved as `path`
    (a `.weights.h5` file): the shapes and names of the published ImageNet file."""
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.applications.ResNet50(
        include_top=False, weights=None, input_shape=(None, None, 3)
    )
    os.makedirs(os.path.dirname(path), exist_ok=True)
    model.save_weights(path)
    return {"path": path, "bytes": os.path.getsize(path), "num_weights": len(model.weights)}


# --------------------------------------------------------------------------------------------
# Subprocesses, measured


def tree_rss(process):
    """RSS in bytes of a psutil process and its children."""
    import psutil

    total = 0
    try:
        for p in [process, *process.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
    except psutil.Error:
        pass
    return total


def run_measured(command, log_path, *, env, rss_limit, timeout, stop_when=None):
    """Runs `command` under `/usr/bin/time -v` in its own session, sampling the tree's RSS.

    Args:
        stop_when: a callable polled every second; when it returns a reason, the process group
            is sent SIGTERM (then SIGKILL after 30 s) and the reason is recorded.

    Returns:
        {"command", "rc", "wall_s", "peak_rss_gib" (largest process, /usr/bin/time),
        "peak_tree_rss_gib" (sampled), "stopped" (why it was stopped, or None), "log"}.
    """
    import psutil

    time_path = log_path + ".time"
    full = ["/usr/bin/time", "-v", "-o", time_path, *command]
    start = time.time()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            full,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPOSITORY_ROOT,
            start_new_session=True,
        )
        ps = psutil.Process(proc.pid)
        peak, stopped = 0, None
        while proc.poll() is None:
            peak = max(peak, tree_rss(ps))
            if stopped is None:
                if peak > rss_limit:
                    stopped = f"tree RSS {peak / 2**30:.1f} GiB over the limit"
                elif time.time() - start > timeout:
                    stopped = f"ran past {timeout} s"
                elif stop_when is not None:
                    stopped = stop_when()
                if stopped:
                    os.killpg(proc.pid, signal.SIGTERM)
                    threading.Timer(
                        30, lambda: proc.poll() is None and os.killpg(proc.pid, 9)
                    ).start()
            time.sleep(1.0)
    wall = time.time() - start
    max_rss_kib = None
    if os.path.isfile(time_path):
        with open(time_path) as f:
            found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", f.read())
            max_rss_kib = int(found.group(1)) if found else None
    return {
        "command": shlex.join(command),
        "rc": proc.returncode,
        "wall_s": round(wall, 1),
        "peak_rss_gib": None if max_rss_kib is None else round(max_rss_kib / 2**20, 2),
        "peak_tree_rss_gib": round(peak / 2**30, 2),
        "stopped": stopped,
        "log": log_path,
    }


def child_env(threads):
    env = dict(os.environ)
    env.update(
        TF_NUM_INTEROP_THREADS="1",
        TF_NUM_INTRAOP_THREADS=str(threads),
        TF_CPP_MIN_LOG_LEVEL="2",
        CUDA_VISIBLE_DEVICES="",
        PYTHONUNBUFFERED="1",
    )
    return env


# --------------------------------------------------------------------------------------------
# Reading the run


def read_history(run_dir):
    """history.csv rows as dicts of floats (empty values dropped)."""
    path = os.path.join(run_dir, "history.csv")
    if not os.path.isfile(path):
        return []
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in rows]


def recipe_lr(step, s=RECIPE_SCHEDULE):
    """The recipe's rate at optimizer step `step`: poly 0.9 over 30,000 steps, times a factor
    rising linearly from 0.1 to 1 over the first 500 steps."""
    poly = s["base"] * (1 - min(step, s["steps"]) / s["steps"]) ** s["power"]
    if step < s["warmup"]:
        poly *= s["warmup_start"] + (1 - s["warmup_start"]) * step / s["warmup"]
    return poly


def check_schedule(history):
    """The logged `lr` of every epoch row against `recipe_lr` at its `step`."""
    rows = []
    for row in history:
        if "lr" not in row or "step" not in row:
            continue
        step, logged = int(row["step"]), row["lr"]
        want = recipe_lr(step)
        rows.append(
            {"step": step, "logged": logged, "recipe": want, "rel_error": abs(logged - want) / want}
        )
    return {
        "formula": "0.01 * (1 - t/30000)**0.9 * (0.1 + 0.9 t/500 for t < 500, else 1); "
        "B1-B5 at 0.1x",
        "rows": rows,
        "max_rel_error": max((r["rel_error"] for r in rows), default=None),
        "ok": bool(rows) and all(r["rel_error"] < 1e-5 for r in rows),
    }


STEP_LINE = re.compile(r"(\d+)/(\d+) - (\d+)s - (\d+(?:\.\d+)?)(ms|s)/step")


def epoch_step_times(log_path):
    """Seconds per step of each epoch, from the Keras lines `6/6 - 190s - 31s/step - ...`."""
    with open(log_path, errors="replace") as f:
        text = f.read()
    times = []
    for m in STEP_LINE.finditer(text):
        value = float(m.group(4)) / (1000.0 if m.group(5) == "ms" else 1.0)
        times.append(value)
    return times


def optimizer_groups(run_dir):
    """What the trainer recorded of the rates (config.json's train section)."""
    path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        train = json.load(f).get("train", {})
    keys = (
        "learning_rate",
        "backbone_lr_multiplier",
        "warmup_steps",
        "warmup_start_factor",
        "poly_power",
        "steps",
        "batch_size",
        "momentum",
        "weight_decay",
        "mixed_precision",
    )
    return {k: train.get(k) for k in keys}


# --------------------------------------------------------------------------------------------
# The projection


def project_gpu(step_s_cpu, steps=30000, batch=16):
    """The full schedule's time on one GPU from the measured H100 rates, and what it leaves out."""
    images = steps * batch
    out = {"images": images, "reference": GPU_REFERENCE["source"]}
    for policy, rate in GPU_REFERENCE["images_per_s"].items():
        out[f"train_hours_{policy}"] = round(images / rate / 3600, 2)
    out["cpu_hours_this_machine"] = (
        None if step_s_cpu is None else round(steps * step_s_cpu / 3600, 1)
    )
    out["how"] = (
        "30,000 steps x 16 images at the H100's measured ui=6 rates (424 img/s bf16, 317 fp16); "
        "that measurement was host-bound (random arrays, Keras on JAX, batch 16), so it is a "
        "floor on what one H100 gives, not a ceiling; float32 TensorFlow with tf.data was not "
        "measured on a GPU. Validation (every 1,000 steps on VOC val, 1,449 images, batch 1) "
        "and the final evaluation come on top."
    )
    return out


# --------------------------------------------------------------------------------------------
# The plot


def plot(result, path):
    """Two panels: the learning rate logged at each epoch's end against the recipe's formula
    (the warm-up), and the seconds per step of each epoch; writes a PNG."""
    from rignet_keras.training.plots import pyplot

    plt = pyplot()

    runs = [result["stages"][k] for k in ("train", "train_resume") if k in result["stages"]]
    history = max((r.get("history") or [] for r in runs), key=len)
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4), dpi=110)
    last = max([int(r["step"]) for r in history if "step" in r] + [24])
    steps = np.arange(0, last + 7)
    a.plot(steps, [recipe_lr(int(t)) for t in steps], label="recipe: poly 0.9, 500 warm-up")
    logged = [(r["step"], r["lr"]) for r in history if "lr" in r]
    if logged:
        a.plot(*zip(*logged, strict=True), "o", label="logged by the run")
    a.set_xlabel("optimizer step")
    a.set_ylabel("learning rate (gates, head)")
    a.set_title("the first steps of the 30,000-step schedule", fontsize=9)
    a.legend(fontsize=7)
    a.grid(alpha=0.3)
    x = 0
    for r, label in zip(runs, ("first process", "resumed"), strict=False):
        times = r.get("step_s_per_epoch") or []
        b.bar(range(x + 1, x + len(times) + 1), times, label=label)
        x += len(times)
    b.set_xticks(range(1, x + 1))
    b.set_xlabel("epoch of 6 steps (first of each process: tracing)")
    b.set_ylabel("s / step")
    b.set_title("ResNet50-RIGNet ui=6, batch 16, crop 321, 2 shared cores", fontsize=9)
    b.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------------------------
# The stages


def main(argv=None):
    parser = bench_parser(
        __doc__,
        threads=2,
        output=RESULT,
        helps={"threads": "TensorFlow intra-op threads (default: %(default)s)"},
    )
    parser.add_argument("--work", default="/tmp/voc_dry_run", help="data, weights and the run")
    parser.add_argument("--steps", type=int, default=24, help="steps to train before stopping")
    parser.add_argument("--steps-per-epoch", type=int, default=6)
    parser.add_argument("--num-voc-train", type=int, default=24)
    parser.add_argument("--num-val", type=int, default=6)
    parser.add_argument("--num-sbd", type=int, default=32)
    parser.add_argument("--rss-limit-gib", type=float, default=18.0)
    parser.add_argument("--timeout-s", type=int, default=3600, help="per subprocess")
    parser.add_argument("--export-size", type=int, default=512, help="export input side")
    parser.add_argument("--latency-runs", type=int, default=2, help="export manifest timings")
    parser.add_argument(
        "--resume-train",
        action="store_true",
        help="if training ended early, continue it from its backup (the recipe's --resume)",
    )
    parser.add_argument("--redo", nargs="*", default=[], choices=STAGES)
    args = parser.parse_args(argv)
    if args.steps % args.steps_per_epoch:
        print("error: --steps must be a multiple of --steps-per-epoch", file=sys.stderr)
        return 2

    result = {}
    if os.path.isfile(args.output):
        with open(args.output) as f:
            result = json.load(f)
    stages = result.setdefault("stages", {})
    for stage in args.redo:
        stages.pop(stage, None)
    result.update(
        command=command_line("voc_dry_run", argv),
        machine=result.get("machine") or machine(),
        uptime_start=result.get("uptime_start") or subprocess.getoutput("uptime").strip(),
        work=args.work,
        seeds={"data": 0, "weights": 0, "train": 0},
    )

    def save():
        write_json(args.output, result)

    data_dir = os.path.join(args.work, "data")
    weights = os.path.join(args.work, "weights", "resnet50_random_notop.weights.h5")
    run_dir = os.path.join(args.work, "runs", "voc_r50_pu64_ui6")
    logs = os.path.join(args.work, "logs")
    os.makedirs(logs, exist_ok=True)
    env = child_env(args.threads)
    rss_limit = args.rss_limit_gib * 2**30
    recipe = [
        sys.executable,
        RECIPE,
        "--data-dir",
        data_dir,
        "--backbone-weights",
        weights,
        "--steps-per-epoch",
        str(args.steps_per_epoch),
        "--output-dir",
        run_dir,
        "--quiet",
    ]

    if "data" not in stages:
        t = time.time()
        stages["data"] = write_voc_and_sbd(data_dir, args.num_voc_train, args.num_val, args.num_sbd)
        stages["data"]["seconds"] = round(time.time() - t, 1)
        save()
    if "weights" not in stages:
        stages["weights"] = write_resnet50_weights(weights)
        save()

    checkpoints = os.path.join(run_dir, "checkpoints", "checkpoints.json")
    state = os.path.join(run_dir, "backup", "state.json")

    def reached():
        try:
            with open(checkpoints) as f:
                last = (json.load(f).get("last") or {}).get("step") or 0
            with open(state) as f:
                backup = json.load(f)
        except (OSError, ValueError):
            return None
        epochs = args.steps // args.steps_per_epoch
        done = (backup.get("step") or 0) >= args.steps and backup.get("epochs_done", 0) >= epochs
        if last >= args.steps and done:
            return f"stopped after step {args.steps} (checkpoint and backup written)"
        return None

    if "train" not in stages:
        if os.path.isdir(run_dir):
            import shutil

            shutil.rmtree(run_dir)
        print(f"training: {shlex.join(recipe)}", flush=True)
        run = run_measured(
            recipe,
            os.path.join(logs, "train.log"),
            env=env,
            rss_limit=rss_limit,
            timeout=args.timeout_s,
            stop_when=reached,
        )
        history = read_history(run_dir)
        per_epoch = epoch_step_times(run["log"])
        steady = per_epoch[1:] or per_epoch
        run.update(
            steps_done=int(max((r.get("step", 0) for r in history), default=0)),
            history=history,
            step_s_per_epoch=per_epoch,
            median_step_s=median(steady),
            median_step_s_note="per-epoch mean step times from Keras' epoch lines, the first "
            "epoch (graph tracing) left out; the median of the rest",
            schedule=check_schedule(history),
            recorded_train_config=optimizer_groups(run_dir),
            ok=run["stopped"] is not None and run["stopped"].startswith("stopped after"),
        )
        stages["train"] = run
        save()
    train = stages["train"]
    if not train["ok"] and args.resume_train and "train_resume" not in stages:
        # The trainer's exact resume, at full scale: from the last backup to `--steps`.
        print(f"resuming: {shlex.join([*recipe, '--resume'])}", flush=True)
        run = run_measured(
            [*recipe, "--resume"],
            os.path.join(logs, "train_resume.log"),
            env=env,
            rss_limit=rss_limit,
            timeout=args.timeout_s,
            stop_when=reached,
        )
        history = read_history(run_dir)
        per_epoch = epoch_step_times(run["log"])
        run.update(
            steps_done=int(max((r.get("step", 0) for r in history), default=0)),
            history=history,
            step_s_per_epoch=per_epoch,
            schedule=check_schedule(history),
            ok=run["stopped"] is not None and run["stopped"].startswith("stopped after"),
        )
        stages["train_resume"] = run  # evaluation and export stay those of the first run's
        save()
    resumed = stages.get("train_resume", {})
    steady = (train.get("step_s_per_epoch") or [])[1:] + (resumed.get("step_s_per_epoch") or [])[1:]
    if steady:
        train["median_step_s"] = median(steady)
        train["median_step_s_note"] = (
            "median of the per-epoch mean step times from Keras' epoch lines, the first epoch "
            "of each process (graph tracing) left out"
        )
    if not train["ok"] and resumed.get("ok"):
        train = dict(train, ok=True)
    if not train["ok"]:
        # A run killed early (e.g. by the kernel's OOM killer on a shared machine) still leaves
        # the checkpoints of its finished epochs: evaluate and export those, and say so.
        done = train.get("steps_done") or 0
        train["note"] = (
            f"ended after step {done} of {args.steps} (rc {train['rc']}; 137 = SIGKILL, see the "
            "kernel log for the OOM killer); evaluation and export use step "
            f"{done}'s checkpoint"
        )
        save()
        print(f"warning: {train['note']}", file=sys.stderr)
        if done == 0:
            return 1

    if "evaluate" not in stages:
        run = run_measured(
            [*recipe, "--eval-only"],
            os.path.join(logs, "evaluate.log"),
            env=env,
            rss_limit=rss_limit,
            timeout=args.timeout_s,
        )
        results = os.path.join(run_dir, "eval", "results.json")
        if os.path.isfile(results):
            with open(results) as f:
                scores = json.load(f)
            run["mIoU_per_ui"] = {
                str(k): v.get("mIoU") for k, v in (scores.get("scores") or {}).items()
            }
        predictions = os.path.join(run_dir, "eval", "predictions")
        run["files"] = sorted(
            os.path.relpath(os.path.join(d, n), run_dir)
            for d, _, names in os.walk(predictions)
            for n in names
        )[:40]
        stages["evaluate"] = run
        save()

    if "export" not in stages:
        model = os.path.join(run_dir, "checkpoints", "best.keras")
        if not os.path.isfile(model):
            model = os.path.join(run_dir, "checkpoints", "last.keras")
        export_dir = os.path.join(run_dir, "export")
        command = [
            sys.executable,
            os.path.join("export", "export_model.py"),
            model,
            export_dir,
            "--input-size",
            str(args.export_size),
            str(args.export_size),
            "--latency-runs",
            str(args.latency_runs),
            "--latency-warmup",
            "1",
            "--threads",
            str(args.threads),
            "--overwrite",
        ]
        run = run_measured(
            command,
            os.path.join(logs, "export.log"),
            env=env,
            rss_limit=rss_limit,
            timeout=args.timeout_s,
        )
        if os.path.isdir(export_dir):
            run["files"] = {
                n: os.path.getsize(os.path.join(export_dir, n))
                for n in sorted(os.listdir(export_dir))
            }
            manifest = os.path.join(export_dir, "manifest.json")
            if os.path.isfile(manifest):
                with open(manifest) as f:
                    run["manifest_keys"] = sorted(json.load(f))
        stages["export"] = run
        save()

    result["projection"] = project_gpu(train.get("median_step_s"))
    result["uptime_end"] = subprocess.getoutput("uptime").strip()
    result["peak_rss_gib"] = max(
        (s.get("peak_rss_gib") or 0) for s in stages.values() if isinstance(s, dict)
    )
    result["plot"] = os.path.relpath(
        plot(result, os.path.splitext(args.output)[0] + ".png"), REPOSITORY_ROOT
    )
    save()
    print(json.dumps({k: result[k] for k in ("peak_rss_gib", "projection")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
