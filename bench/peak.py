"""The machine's peak: dense matrix multiply throughput through TensorFlow at a thread count.

Every efficiency figure in BENCHMARKS.md is a share of this number, measured on the same
machine with the same threads: float32 and bfloat16 (oneDNN uses AMX where the CPU has it).

Usage:
    python bench/peak.py --threads 2 --out bench/results/peak.json
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

from common import machine, summary_ms, time_calls, write_json  # noqa: E402


def measure(dtype, size, threads, repeats):
    import tensorflow as tf

    a = tf.random.normal((size, size), dtype=tf.float32)
    b = tf.random.normal((size, size), dtype=tf.float32)
    a, b = tf.cast(a, dtype), tf.cast(b, dtype)

    @tf.function
    def matmul(x, y):
        return tf.reduce_sum(tf.cast(tf.matmul(x, y)[:1, :1], tf.float32))

    times = time_calls(lambda: matmul(a, b).numpy(), repeats=repeats, warmup=3)
    stats = summary_ms(times)
    stats["gflops_median"] = 2 * size**3 / (stats["median_ms"] / 1e3) / 1e9
    stats["gflops_best"] = 2 * size**3 / (min(times)) / 1e9
    return stats


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", default="bench/results/peak.json")
    args = parser.parse_args(argv)

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    results = dict(machine=machine(), threads=args.threads, size=args.size)
    for name, dtype in (("float32", tf.float32), ("bfloat16", tf.bfloat16)):
        results[name] = measure(dtype, args.size, args.threads, args.repeats)
        print(f"{name:9s} {results[name]['gflops_median']:8.1f} GFLOP/s median "
              f"({results[name]['gflops_best']:.1f} best) at {args.threads} threads")
    results["command"] = "python bench/peak.py " + " ".join(argv or sys.argv[1:])
    write_json(args.out, results)


if __name__ == "__main__":
    main()
