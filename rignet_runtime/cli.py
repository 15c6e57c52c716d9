"""The runtime's command line: segment images with an exported graph, or benchmark the graphs.

    python -m rignet_runtime photo.jpg --manifest exports/rignet --budget-ms 40
    python -m rignet_runtime photos/ --model exports/rignet/rignet_float32.tflite --ui 2
    python -m rignet_runtime photo.jpg --manifest exports/rignet --deadline-ms 30
    python -m rignet_runtime --manifest exports/rignet --benchmark \\
        --write-manifest exports/rignet/device_manifest.json

Every option is checked before any work: a user error is one line on stderr and exit status 2.
"""

import argparse
import math
import sys

from .batch import run
from .benchmark import (
    benchmark,
    check_device_manifest_path,
    format_benchmark,
    write_device_manifest,
)
from .errors import RunnerError
from .images import list_images, load_image
from .litert_cache import DEFAULT_THREADS
from .manifest import load_manifest
from .stopping import (
    DEFAULT_CONFIDENCE,
    DEFAULT_STABLE_TOLERANCE,
    DEFAULT_STOP_TEST,
    DEFAULT_UNCERTAIN_TOLERANCE,
    STOP_TESTS,
    StoppingRule,
)

BENCHMARK_RUNS = 20
BENCHMARK_WARMUP = 2


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (and exit status 2)."""

    def error(self, message):
        self.exit(2, f"error: {message} (see --help)\n")


def build_parser(prog="run_tflite.py"):
    """The runner's command line."""
    parser = _Parser(
        prog=prog,
        description="Run an exported RIGNet TFLite graph on images (NumPy, Pillow and "
        "ai_edge_litert only): palette PNG masks and colour overlays, or a latency benchmark.",
    )
    parser.add_argument("inputs", nargs="?", help="an image file or a folder of images")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="a .tflite file written by the exporter")
    source.add_argument("--manifest", help="a manifest.json (or its folder)")
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--ui", type=int, help="the number of iterations to run")
    choice.add_argument(
        "--budget-ms",
        type=float,
        help="pick the largest ui whose measured latency fits this budget",
    )
    choice.add_argument(
        "--deadline-ms",
        type=float,
        help="run the step-wise graph iteration after iteration until this "
        "deadline (stops early when the class map stops changing)",
    )
    parser.add_argument(
        "--quality-floor",
        type=float,
        metavar="POINTS",
        help="with --manifest: the cheapest ui graph within this many mIoU points of the best "
        "in the manifest (its recorded validation quality); with --budget-ms, within the budget",
    )
    parser.add_argument(
        "--min-miou",
        type=float,
        metavar="POINTS",
        help="with --manifest: the cheapest ui graph whose recorded mIoU is at least this "
        "(0..100); combines with --quality-floor and --budget-ms",
    )
    parser.add_argument("--precision", help="with --manifest: only graphs of this precision")
    parser.add_argument("--output-dir", default="rignet_masks", help="where masks go")
    parser.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_THREADS,
        help=f"CPU threads (default {DEFAULT_THREADS})",
    )
    parser.add_argument(
        "--resize",
        action="store_true",
        help="resize images to the graph's fixed size (masks are resized back)",
    )
    parser.add_argument("--no-overlay", action="store_true", help="write masks only")
    parser.add_argument("--alpha", type=float, default=0.5, help="overlay opacity, 0..1")
    parser.add_argument(
        "--max-iterations", type=int, help="with --deadline-ms: at most this many iterations"
    )
    parser.add_argument(
        "--stop",
        choices=STOP_TESTS,
        help="with --deadline-ms: when an image's answer has settled: 'stable' (few labels "
        "changed since the last iteration), 'confident' (few pixels below --confidence), "
        f"'both', 'either', or 'none' (default {DEFAULT_STOP_TEST})",
    )
    parser.add_argument(
        "--no-early-stop",
        action="store_true",
        help="with --deadline-ms: never stop early (the same as --stop none)",
    )
    parser.add_argument(
        "--stable-tolerance",
        type=float,
        help="with --deadline-ms: share of changed pixels (0..1) under which the class map "
        f"counts as stable (default {DEFAULT_STABLE_TOLERANCE:g}; 0: identical maps)",
    )
    parser.add_argument(
        "--confidence",
        type=float,
        help="with --deadline-ms: a pixel is confident when its top class probability is at "
        f"least this, 0..1 (default {DEFAULT_CONFIDENCE:g})",
    )
    parser.add_argument(
        "--uncertain-tolerance",
        type=float,
        help="with --deadline-ms: share of pixels (0..1) that may be below --confidence for "
        f"the answer to count as confident (default {DEFAULT_UNCERTAIN_TOLERANCE:g})",
    )
    parser.add_argument(
        "--benchmark",
        action="store_true",
        help="print latency median/p90 of every ui signature and exit",
    )
    parser.add_argument(
        "--runs",
        type=int,
        help=f"with --benchmark: timed runs per signature (default {BENCHMARK_RUNS})",
    )
    parser.add_argument(
        "--write-manifest",
        metavar="FILE",
        help="with --benchmark --manifest: write a copy of the manifest with this device's "
        "latencies to FILE (a .json in the export folder), for later --budget-ms choices",
    )
    parser.add_argument(
        "--weight-cache",
        metavar="DIR",
        help="keep an XNNPACK weight cache in DIR (created if missing): the first run writes "
        "it, later runs start faster (they skip repacking the weights). One file per model "
        "file and LiteRT version, about the model's size",
    )
    return parser


def _positive(flag, value, integer=False):
    if value is None:
        return
    if integer:
        if value < 1:
            raise RunnerError(f"{flag} must be >= 1; received {value}")
    elif not math.isfinite(value) or value <= 0:
        raise RunnerError(f"{flag} must be a positive number of milliseconds; received {value}")


def _share(flag, value):
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise RunnerError(f"{flag} must be in 0..1; received {value}")


def stopping_from_arguments(args):
    """The `StoppingRule` the flags ask for (defaults where a flag is not given)."""
    if args.no_early_stop and args.stop not in (None, "none"):
        raise RunnerError(f"--no-early-stop and --stop {args.stop} contradict each other")
    values = {
        "test": "none" if args.no_early_stop else args.stop,
        "stable_tolerance": args.stable_tolerance,
        "confidence": args.confidence,
        "uncertain_tolerance": args.uncertain_tolerance,
    }
    for flag, key in (
        ("--stable-tolerance", "stable_tolerance"),
        ("--confidence", "confidence"),
        ("--uncertain-tolerance", "uncertain_tolerance"),
    ):
        if values[key] is not None:
            _share(flag, values[key])
    return StoppingRule(**{k: v for k, v in values.items() if v is not None})


def check_arguments(args):
    """Refuses every bad or meaningless combination of options before any work is done."""
    _positive("--threads", args.threads, integer=True)
    _positive("--runs", args.runs, integer=True)
    _positive("--ui", args.ui, integer=True)
    _positive("--max-iterations", args.max_iterations, integer=True)
    _positive("--budget-ms", args.budget_ms)
    _positive("--deadline-ms", args.deadline_ms)
    _share("--alpha", args.alpha)
    stopping_from_arguments(args)
    for flag, value, high in (
        ("--quality-floor", args.quality_floor, None),
        ("--min-miou", args.min_miou, 100.0),
    ):
        if value is None:
            continue
        if not math.isfinite(value) or value < 0 or (high is not None and value > high):
            bounds = "0..100" if high else ">= 0"
            raise RunnerError(f"{flag} must be mIoU points, {bounds}; received {value}")
        if args.manifest is None:
            raise RunnerError(
                f"{flag} chooses by a manifest's quality figures; it needs --manifest"
            )
        for other, given in (("--ui", args.ui), ("--deadline-ms", args.deadline_ms)):
            if given is not None:
                raise RunnerError(f"{flag} chooses a ui graph; it does not combine with {other}")
        if args.benchmark:
            raise RunnerError(f"--benchmark times every graph; {flag} does not apply")
    if args.precision is not None and args.manifest is None:
        raise RunnerError("--precision chooses among a manifest's graphs; it needs --manifest")
    if args.deadline_ms is None:
        for flag, given in (
            ("--max-iterations", args.max_iterations is not None),
            ("--stop", args.stop is not None),
            ("--no-early-stop", args.no_early_stop),
            ("--stable-tolerance", args.stable_tolerance is not None),
            ("--confidence", args.confidence is not None),
            ("--uncertain-tolerance", args.uncertain_tolerance is not None),
        ):
            if given:
                raise RunnerError(f"{flag} applies to --deadline-ms runs only")
    if args.benchmark:
        for flag, value in (
            ("--ui", args.ui),
            ("--budget-ms", args.budget_ms),
            ("--deadline-ms", args.deadline_ms),
        ):
            if value is not None:
                raise RunnerError(f"--benchmark times every graph; {flag} does not apply")
        if args.write_manifest is not None:
            if args.manifest is None:
                raise RunnerError("--write-manifest copies a manifest; it needs --manifest")
            check_device_manifest_path(load_manifest(args.manifest), args.write_manifest)
    else:
        if args.write_manifest is not None:
            raise RunnerError("--write-manifest records benchmark latencies; add --benchmark")
        if args.runs is not None:
            raise RunnerError("--runs sets the benchmark's timed runs; add --benchmark")
        if not args.inputs:
            raise RunnerError("give an image or a folder of images (or --benchmark)")


def main(argv=None, prog="run_tflite.py"):
    """The command line entry point; returns the process exit status."""
    args = build_parser(prog).parse_args(argv)
    try:
        check_arguments(args)
        if args.benchmark:
            image = load_image(list_images(args.inputs)[0]) if args.inputs else None
            runs = BENCHMARK_RUNS if args.runs is None else args.runs
            rows = benchmark(
                args.model,
                args.manifest,
                args.precision,
                args.threads,
                runs,
                warmup=BENCHMARK_WARMUP,
                image=image,
                weight_cache=args.weight_cache,
            )
            print(format_benchmark(rows))
            if args.write_manifest is not None:
                path = write_device_manifest(
                    args.manifest, rows, args.write_manifest, runs, BENCHMARK_WARMUP
                )
                print(f"wrote this device's latencies to {path} (use it with --manifest)")
            return 0
        run(
            args.inputs,
            args.output_dir,
            model=args.model,
            manifest=args.manifest,
            ui=args.ui,
            budget_ms=args.budget_ms,
            deadline_ms=args.deadline_ms,
            precision=args.precision,
            threads=args.threads,
            resize=args.resize,
            write_overlays=not args.no_overlay,
            alpha=args.alpha,
            max_iterations=args.max_iterations,
            stopping=stopping_from_arguments(args),
            log=print,
            weight_cache=args.weight_cache,
            quality_floor=args.quality_floor,
            min_miou=args.min_miou,
        )
        return 0
    except RunnerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        where = f" {error.filename!r}" if error.filename else ""
        print(f"error: cannot read or write{where}: {error.strerror or error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    from .litert_log import exit_status

    sys.exit(exit_status(main()))
