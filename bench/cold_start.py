"""Whole-process cold start of the on-device runner, with and without the XNNPACK weight cache.

One sample is one fresh process of the runtime as a device runs it, a copy of the
`rignet_runtime` folder alone (no TensorFlow, no Keras, no rignet_keras package on the path):

    python -m rignet_runtime IMAGE --manifest DIR --ui K --output-dir OUT --threads T
        [--weight-cache CACHE]

timed from its start to its exit (Python start-up, imports, loading the graph, the first
inference of one image, writing the mask and overlay). Two modes:
    no_cache  the classic Interpreter: XNNPACK packs the weights at the first call;
    cache     `--weight-cache`: `CompiledModel` maps the packed weights from the cache file,
              built by one untimed warm-up run before the rounds (its time is reported as
              `first_run_s`).
One untimed no-cache run comes first as well, so that both modes find the model file in the OS
page cache. Then `--repeats` rounds run each mode once, the order alternating between rounds.
The masks of the two modes must be identical (checked, reported as `masks_identical`).

Usage:
    python -m bench.cold_start --manifest exports/rignet --ui 2 --repeats 10 \
        --out bench/results/cold_start.json
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from bench.common import REPOSITORY_ROOT, bench_parser, machine, median, write_json

RUNTIME = os.path.join(REPOSITORY_ROOT, "rignet_runtime")
DEVICE_PACKAGE = "rignet_runtime"
MODES = ("no_cache", "cache")


def parse_args(argv=None):
    parser = bench_parser(
        __doc__,
        threads=2,
        repeats=10,
        out="bench/results/cold_start.json",
        helps={
            "threads": "the runner's --threads (default: %(default)s)",
            "repeats": "rounds, one run per mode each (default: %(default)s)",
        },
    )
    parser.add_argument("--manifest", required=True, help="an export's manifest.json or folder")
    parser.add_argument(
        "--image", help="the input image (default: a random PNG of the graph's size)"
    )
    parser.add_argument("--ui", type=int, help="the ui to run (default: the largest)")
    parser.add_argument("--precision", help="only graphs of this precision")
    return parser.parse_args(argv)


def graph_size(manifest_path):
    """(height, width) of the manifest's graphs."""
    if os.path.isdir(manifest_path):
        manifest_path = os.path.join(manifest_path, "manifest.json")
    with open(manifest_path) as f:
        spec = json.load(f)["input"]
    if not spec.get("height") or not spec.get("width"):
        raise SystemExit("the manifest's graphs have a dynamic size: pass --image")
    return int(spec["height"]), int(spec["width"])


def random_image(path, size):
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, tuple(size) + (3,), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def copy_runtime(workdir):
    """Copies the runtime folder alone into `workdir` (as a device holds it); returns `workdir`."""
    shutil.copytree(
        RUNTIME,
        os.path.join(workdir, DEVICE_PACKAGE),
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return workdir


def run_once(args, image, output_dir, device_dir, cache_dir=None):
    """Seconds from spawning one runner process (in `device_dir`) to its exit."""
    command = [sys.executable, "-m", DEVICE_PACKAGE, os.path.abspath(image)]
    command += ["--manifest", os.path.abspath(args.manifest)]
    if args.ui is not None:
        command += ["--ui", str(args.ui)]
    if args.precision:
        command += ["--precision", args.precision]
    command += ["--output-dir", output_dir, "--threads", str(args.threads)]
    if cache_dir is not None:
        command += ["--weight-cache", cache_dir]
    start = time.perf_counter()
    process = subprocess.run(command, capture_output=True, text=True, cwd=device_dir)
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{process.stderr[-3000:]}")
    return seconds, command, process.stdout.strip()


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def summary(samples):
    """Median, min and max seconds of `samples`, and the samples, rounded to 0.1 ms."""
    return dict(
        median_s=round(median(samples), 4),
        min_s=round(min(samples), 4),
        max_s=round(max(samples), 4),
        samples_s=[round(s, 4) for s in samples],
    )


def main(argv=None):
    args = parse_args(argv)
    if args.repeats < 1:
        raise SystemExit("--repeats must be >= 1")
    workdir = tempfile.mkdtemp(prefix="cold_start_")
    try:
        image = args.image
        if image is None:
            image = os.path.join(workdir, "image.png")
            random_image(image, graph_size(args.manifest))
        device_dir = copy_runtime(os.path.join(workdir, "device"))
        cache_dir = os.path.join(workdir, "cache")
        outputs = {mode: os.path.join(workdir, f"masks_{mode}") for mode in MODES}
        load_before = [round(v, 2) for v in os.getloadavg()]

        _, plain_command, line = run_once(
            args, image, outputs["no_cache"], device_dir
        )  # page cache warm-up
        print(f"runner: {line}")
        first_run, cache_command, _ = run_once(args, image, outputs["cache"], device_dir, cache_dir)
        cache_files = {
            name: round(os.path.getsize(os.path.join(cache_dir, name)) / 2**20, 2)
            for name in sorted(os.listdir(cache_dir))
        }
        print(f"first run with --weight-cache (writes the cache): {first_run:.3f} s; {cache_files}")

        samples = {mode: [] for mode in MODES}
        for round_index in range(args.repeats):
            order = MODES if round_index % 2 == 0 else MODES[::-1]
            for mode in order:
                seconds, _, _ = run_once(
                    args, image, outputs[mode], device_dir, cache_dir if mode == "cache" else None
                )
                samples[mode].append(seconds)

        stem = os.path.splitext(os.path.basename(image))[0]
        masks = [read_bytes(os.path.join(outputs[m], f"{stem}.png")) for m in MODES]
        results = {mode: summary(samples[mode]) for mode in MODES}
        speedup = results["no_cache"]["median_s"] / results["cache"]["median_s"]
        payload = dict(
            benchmark="cold_start",
            description=__doc__.split("\n\n")[0],
            commands={"no_cache": plain_command, "cache": cache_command},
            manifest=os.path.abspath(args.manifest),
            image=args.image or f"random {graph_size(args.manifest)} PNG",
            ui=args.ui,
            precision=args.precision,
            threads=args.threads,
            repeats=args.repeats,
            runner_line=line,
            first_run_s=round(first_run, 4),
            cache_files_mib=cache_files,
            results=results,
            median_speedup=round(speedup, 3),
            masks_identical=masks[0] == masks[1],
            load_average_before=load_before,
            load_average_after=[round(v, 2) for v in os.getloadavg()],
        )
        payload["machine"] = machine()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print(
        f"\nwhole-process cold start, {args.repeats} interleaved rounds, "
        f"{args.threads} threads (seconds)"
    )
    print(f"{'mode':<10} {'median':>8} {'min':>8} {'max':>8}")
    for mode in MODES:
        r = results[mode]
        print(f"{mode:<10} {r['median_s']:>8.3f} {r['min_s']:>8.3f} {r['max_s']:>8.3f}")
    print(f"median speed-up {speedup:.2f}x; masks identical: {payload['masks_identical']}")
    write_json(args.out, payload)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
