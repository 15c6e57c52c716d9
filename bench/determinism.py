"""What `train.deterministic` costs, and whether it gives what it promises.

Runs the quickstart's RIGNet (ResNet-18 Pu<6..4>, ui 3, the synthetic pipeline at 96x96,
batch 8) for `--steps` steps with `rignet train`, with and without `--deterministic`, in
alternating fresh processes (A B A B ...). Reports per setting the median training time (the
run's `train_seconds`, which leaves out start-up, evaluation and the command's restart), the
median process wall time, the ratio of paired training times, the mIoU of each run and how
many runs ended with weights bit-equal to the first run of their setting.

    python -m bench.determinism                 # 3 pairs of 30 steps
    python -m bench.determinism --pairs 5 --steps 60

Writes bench/results/determinism.json.
"""

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time

import h5py

from bench.common import REPOSITORY_ROOT, RESULTS_DIR, bench_parser, machine, median, write_json

SETTINGS = {"default": [], "deterministic": ["--deterministic"]}


def write_config(path, output_dir, steps):
    from rignet_keras.config.quickstart import QuickstartConfig, quickstart_runs

    runs = quickstart_runs(QuickstartConfig(steps=steps), output_dir)
    overrides = [("train.tensorboard", False), ("export.formats", []), ("export.quality_images", 0)]
    runs["rignet"].override(overrides).save(path)


def weights_digest(path):
    """SHA-256 over every array of a weights file, in name order."""
    digest = hashlib.sha256()
    names = []

    def collect(name, obj):  # returns None: visititems stops at the first other value
        if isinstance(obj, h5py.Dataset):
            names.append(name)

    with h5py.File(path, "r") as f:
        f.visititems(collect)
        if not names:
            raise SystemExit(f"error: {path} holds no weights")
        for name in sorted(names):
            digest.update(name.encode())
            digest.update(f[name][()].tobytes())
    return digest.hexdigest()


def run_once(config, output_dir, flags):
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "rignet_keras.cli", "train", "--config", config, "--quiet"]
        + ["--output-dir", output_dir, *flags],
        cwd=REPOSITORY_ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"error: rignet train failed: {proc.stderr.strip().splitlines()[-1:]}")
    with open(os.path.join(output_dir, "summary.json")) as f:
        summary = json.load(f)
    return {
        "train_seconds": summary["train_seconds"],
        "wall_seconds": wall,
        "mIoU": summary["mIoU"],
        "weights": weights_digest(os.path.join(output_dir, "checkpoints", "last.weights.h5")),
    }


def main(argv=None):
    parser = bench_parser(__doc__)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args(argv)
    runs = {name: [] for name in SETTINGS}
    with tempfile.TemporaryDirectory() as tmp:
        config = os.path.join(tmp, "run_config.json")
        write_config(config, tmp, args.steps)
        for pair in range(args.pairs):
            for name, flags in SETTINGS.items():
                result = run_once(config, os.path.join(tmp, f"{name}-{pair}"), flags)
                runs[name].append(result)
                print(
                    f"pair {pair + 1}/{args.pairs} {name}: train {result['train_seconds']:.1f} s, "
                    f"mIoU {result['mIoU']:.4f}",
                    flush=True,
                )
    report = {}
    for name, results in runs.items():
        first = results[0]["weights"]
        report[name] = {
            "train_seconds_median": median([r["train_seconds"] for r in results]),
            "wall_seconds_median": median([r["wall_seconds"] for r in results]),
            "mIoU": [round(r["mIoU"], 4) for r in results],
            "bit_equal_to_first": sum(r["weights"] == first for r in results[1:]),
            "runs": len(results),
        }
    ratios = [
        d["train_seconds"] / a["train_seconds"]
        for d, a in zip(runs["deterministic"], runs["default"], strict=True)
    ]
    report["ratio_train_seconds"] = {
        "median": median(ratios),
        "min": min(ratios),
        "max": max(ratios),
    }
    payload = {"machine": machine(), "steps": args.steps, "pairs": args.pairs, **report}
    write_json(os.path.join(RESULTS_DIR, "determinism.json"), payload)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
