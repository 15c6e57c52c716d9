"""Shared helpers of the benchmarks: their command lines, statistics, timing, machine
description and result files.

Command lines: `bench_parser` makes a benchmark's parser with the options most of them share
(`--out` / `--output`, `--threads`, `--runs`, `--repeats`, `--rounds`, `--warmup`, `--seeds`,
`--work-dir`), each added with the default that benchmark gives it; `command_line` is the
command recorded in a results file; `set_tf_threads` applies a thread count to TensorFlow.

Statistics: `median`, `mean_sd`, `spread` (mean, sd, min, max and count over seeds) and
`format_mean_sd` ("mean ± sd").

Latency figures are those of `rignet_runtime.measure_latency` (median, p90, mean and min,
in milliseconds) wherever a benchmark times something: a single callable goes through
`measure_latency` itself; graphs timed against each other in interleaved rounds collect their
samples with `time_calls` or `interleaved_latency` and summarise them with `latency_statistics`.

Result files are written whole or not at all (`write_json`, `write_npz`), through the project's
one atomic writer, `rignet_runtime.atomic`.
"""

import argparse
import json
import os
import platform
import random
import shlex
import statistics
import sys
import time

import numpy as np

from rignet_runtime import atomic, latency_statistics, measure_latency

# The repository root: `python -m bench.NAME` runs from here.
REPOSITORY_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Where the benchmarks write their results.
RESULTS_DIR = os.path.join(REPOSITORY_ROOT, "bench", "results")

__all__ = [
    "INTERLEAVE_ORDERS",
    "NOT_ADDED",
    "REPOSITORY_ROOT",
    "RESULTS_DIR",
    "bench_command",
    "bench_parser",
    "command_line",
    "format_mean_sd",
    "interleaved_latency",
    "latency_statistics",
    "machine",
    "mean_sd",
    "measure_latency",
    "median",
    "set_tf_threads",
    "spread",
    "summary_ms",
    "time_calls",
    "write_json",
    "write_npz",
]


# ---------------------------------------------------------------------------------------------
# Command lines

# The default of an option of `bench_parser` that is not added.
NOT_ADDED = object()

# The shared options: (keyword of `bench_parser`, flag, argparse keywords, shared help text).
SHARED_OPTIONS = (
    ("out", "--out", {}, "the results file (default: %(default)s)"),
    ("output", "--output", {}, "the results file (default: %(default)s)"),
    ("threads", "--threads", {"type": int}, "threads of the runtimes timed (default: %(default)s)"),
    ("runs", "--runs", {"type": int}, "timed runs (default: %(default)s)"),
    ("repeats", "--repeats", {"type": int}, "timed repeats (default: %(default)s)"),
    ("rounds", "--rounds", {"type": int}, "interleaved timing rounds (default: %(default)s)"),
    ("warmup", "--warmup", {"type": int}, "untimed warm-up calls first (default: %(default)s)"),
    ("seeds", "--seeds", {"type": int, "nargs": "+"}, "the runs' seeds (default: %(default)s)"),
    ("work_dir", "--work-dir", {}, "the runs' folders (default: %(default)s)"),
)


def bench_parser(
    doc,
    *,
    full_doc=False,
    out=NOT_ADDED,
    output=NOT_ADDED,
    threads=NOT_ADDED,
    runs=NOT_ADDED,
    repeats=NOT_ADDED,
    rounds=NOT_ADDED,
    warmup=NOT_ADDED,
    seeds=NOT_ADDED,
    work_dir=NOT_ADDED,
    helps=None,
):
    """A benchmark's `argparse` parser holding the shared options it uses.

    Each keyword below adds its option with that default (None is a default too; leave a keyword
    out and its option is not added), so that a benchmark keeps its own defaults:

        out, output   --out / --output: the results file
        threads       --threads (int)
        runs          --runs (int): timed runs
        repeats       --repeats (int)
        rounds        --rounds (int): interleaved timing rounds
        warmup        --warmup (int): untimed calls or steps first
        seeds         --seeds (ints, one or more)
        work_dir      --work-dir: the runs' folders

    Args:
        doc: the benchmark's module docstring. Its first paragraph is the description, or the
            whole of it as written with `full_doc`.
        helps: {keyword: help text} replacing the shared help of an option (what it means in
            that benchmark).

    Returns:
        An `argparse.ArgumentParser`; the benchmark adds its own options to it.
    """
    doc = (doc or "").strip()
    if full_doc:
        parser = argparse.ArgumentParser(
            description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
        )
    else:
        parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    given = dict(
        out=out,
        output=output,
        threads=threads,
        runs=runs,
        repeats=repeats,
        rounds=rounds,
        warmup=warmup,
        seeds=seeds,
        work_dir=work_dir,
    )
    helps = dict(helps or {})
    unknown = sorted(set(helps) - set(given))
    if unknown:
        raise ValueError(f"helps names options bench_parser does not have: {unknown}")
    for name, flag, keywords, shared_help in SHARED_OPTIONS:
        default = given[name]
        if default is NOT_ADDED:
            continue
        if isinstance(default, tuple):
            default = list(default)
        if name == "seeds" and default is not None:  # "0 1 2", as typed, not "[0, 1, 2]"
            shared_help = shared_help.replace("%(default)s", " ".join(map(str, default)))
        parser.add_argument(flag, default=default, help=helps.get(name, shared_help), **keywords)
    return parser


def command_line(name, argv=None):
    """The command that ran benchmark `name`, as results files record it:
    "python -m bench.NAME ARGS" with `argv` (default: this process's arguments) quoted."""
    args = sys.argv[1:] if argv is None else list(argv)
    return " ".join(["python -m bench." + name, shlex.join(map(str, args))]).strip()


def bench_command(name, *args):
    """The command line that runs benchmark `name` in a fresh process (with cwd=REPOSITORY_ROOT):
    `[python, "-m", "bench.NAME", *args]`."""
    return [sys.executable, "-m", f"bench.{name}", *map(str, args)]


def set_tf_threads(intra_op, inter_op=None):
    """Sets TensorFlow's intra-op threads to `intra_op` and its inter-op threads to `inter_op`
    (default: `intra_op` too), before any op runs; returns `intra_op`."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(intra_op)
    tf.config.threading.set_inter_op_parallelism_threads(intra_op if inter_op is None else inter_op)
    return intra_op


# ---------------------------------------------------------------------------------------------
# Statistics


def _present(values, scale=1.0):
    return [scale * v for v in values if v is not None]


def median(values, *, high=False):
    """The median of `values` (None values left out); None when there is none.

    Args:
        high: for an even count, the larger of the two middle values (one that was measured)
            instead of their mean.
    """
    values = _present(values)
    if not values:
        return None
    return statistics.median_high(values) if high else statistics.median(values)


def mean_sd(values, scale=1.0):
    """(mean, sample standard deviation) of `values` times `scale`, None values left out; the
    deviation of a single value is 0.0. None when there is no value."""
    values = _present(values, scale)
    if not values:
        return None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def spread(values, scale=1.0):
    """{"mean", "sd", "min", "max", "n"} of `values` times `scale` (e.g. 100 for percent), None
    values left out (a diverged run); None when there is no value."""
    present = _present(values, scale)
    if not present:
        return None
    mean, sd = mean_sd(present)
    return {"mean": mean, "sd": sd, "min": min(present), "max": max(present), "n": len(present)}


def format_mean_sd(stats, scale=1.0, digits=1, missing="-"):
    """ "mean ± sd" of a `spread` dict or a `mean_sd` pair (each times `scale`, `digits`
    decimals), or `missing` when `stats` is None or empty."""
    if not stats:
        return missing
    mean, sd = (stats["mean"], stats["sd"]) if isinstance(stats, dict) else stats
    return f"{scale * mean:.{digits}f} ± {scale * sd:.{digits}f}"


# ---------------------------------------------------------------------------------------------
# The machine and timing


def machine():
    """What ran the benchmark: CPU model, cores, platform, load average, memory, library versions,
    date."""
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = dict(
        cpu=cpu,
        cores=os.cpu_count(),
        platform=platform.platform(),
        load_average=[round(v, 2) for v in os.getloadavg()],
        python=platform.python_version(),
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    )
    try:
        with open("/proc/meminfo") as f:
            info["memory_gib"] = round(int(f.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    for name in ("tensorflow", "keras", "onnxruntime", "ai_edge_litert", "numpy"):
        try:
            module = __import__(name)
            info[name] = getattr(module, "__version__", "?")
        except ImportError:
            pass
    return info


def time_calls(fn, repeats=10, warmup=2):
    """Runs `fn()` `warmup` times untimed, then `repeats` times; returns the seconds of each."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def summary_ms(times):
    """`latency_statistics` of samples given in seconds (as `time_calls` returns them)."""
    return latency_statistics([1e3 * t for t in times])


INTERLEAVE_ORDERS = ("shuffle", "alternate")


def interleaved_latency(calls, rounds, per_round=1, warmup=2, round_warmup=0, order="shuffle"):
    """Times several callables against each other, so that a busy machine slows all alike.

    Args:
        calls: {key: a callable taking no arguments}.
        rounds: rounds (at least 1); each times every callable `per_round` times. A benchmark
            whose `--rounds 0` means "time nothing" does not call this.
        per_round: timed calls of each callable per round (at least 1).
        warmup: untimed calls of each callable before the first round.
        round_warmup: untimed calls of each callable in each round, before its timed calls.
        order: the callables' order within a round: "shuffle" (a new random order each round,
            seeded), or "alternate" (as given in even rounds, reversed in odd ones).

    Returns:
        {key: `latency_statistics` of its rounds x per_round samples}.

    Raises:
        ValueError: `rounds` or `per_round` below 1 (no sample to summarise), or an unknown
            `order`; before any call.
    """
    if rounds < 1 or per_round < 1:
        raise ValueError(
            f"interleaved_latency needs rounds >= 1 and per_round >= 1; received rounds={rounds}, "
            f"per_round={per_round}"
        )
    if order not in INTERLEAVE_ORDERS:
        raise ValueError(f"order must be one of {INTERLEAVE_ORDERS}; received {order!r}")
    for call in calls.values():
        for _ in range(warmup):
            call()
    samples = {key: [] for key in calls}
    keys = list(calls)
    rng = random.Random(0)
    for r in range(rounds):
        if order == "shuffle":
            rng.shuffle(keys)
        elif r > 0:
            keys.reverse()
        for key in keys:
            times = time_calls(calls[key], per_round, warmup=round_warmup)
            samples[key] += [1e3 * t for t in times]
    return {key: latency_statistics(v) for key, v in samples.items()}


# ---------------------------------------------------------------------------------------------
# Result files


def load_results(path):
    """A results file's content; {"runs": {}} when it does not exist yet."""
    if os.path.isfile(path):
        with open(path) as f:
            return json.load(f)
    return {"runs": {}}


def write_json(path, payload, indent=2):
    """Writes `payload` as JSON (with a final newline) to `path` atomically, creating its
    folder; returns `path`."""
    return atomic.write_json(path, payload, indent=indent)


def write_npz(path, arrays, compressed=False):
    """Writes {name: array} as a NumPy `.npz` file (`compressed`: `np.savez_compressed`) to
    `path` atomically, creating its folder; returns `path`."""
    save = np.savez_compressed if compressed else np.savez
    with atomic.replacing(path, suffix=".npz") as tmp:
        save(tmp, **arrays)
    return path
