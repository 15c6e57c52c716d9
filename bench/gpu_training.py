"""Training throughput and peak accelerator memory of RIGNet on one GPU, any Keras backend.

The model is plain Keras 3, so this runs where TensorFlow is not installed (e.g. with
`KERAS_BACKEND=jax` on a CUDA machine). Each configuration runs in its own process so that the
peak-memory figure is that configuration's alone. Data are random images and masks held in
memory: this measures the model's step, not a data pipeline.

Usage:
    KERAS_BACKEND=jax python -m bench.gpu_training --out bench/results/gpu_training.json
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

from bench.common import (
    REPOSITORY_ROOT,
    bench_command,
    bench_parser,
    command_line,
    median,
    time_calls,
    write_json,
)

CONFIGS = {
    "resnet50_fcn": dict(feedback_blocks=None, num_iterations=1),
    "resnet50_rignet_pu64_ui2": dict(feedback_blocks=(4, 6), num_iterations=2),
    "resnet50_rignet_pu64_ui6": dict(feedback_blocks=(4, 6), num_iterations=6),
}


def run_one(name, policy, batch_size, crop, steps, warmup_steps):
    """Trains one configuration for `warmup_steps` + `steps` and returns its figures."""
    import keras
    import numpy as np

    from rignet_keras.models import RIGNet

    keras.mixed_precision.set_global_policy(policy)
    model = RIGNet(num_classes=21, backbone="resnet50", unroll_mode="parallel", **CONFIGS[name])
    model.compile(
        optimizer=keras.optimizers.SGD(0.001, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=255),
    )
    rng = np.random.default_rng(0)
    n = batch_size * max(steps, warmup_steps)  # one pass over the arrays is one timed run
    x = rng.normal(size=(n, crop, crop, 3)).astype("float32")
    y = rng.integers(0, 21, size=(n, crop, crop)).astype("int32")

    start = time.perf_counter()
    model.fit(x, y, batch_size=batch_size, epochs=1, steps_per_epoch=warmup_steps, verbose=0)
    compile_and_warmup_s = time.perf_counter() - start

    def timed_run():
        history = model.fit(x, y, batch_size=batch_size, epochs=1, steps_per_epoch=steps, verbose=0)
        float(history.history["loss"][-1])  # the step results are on the host: work is done

    times = sorted(time_calls(timed_run, repeats=3, warmup=0))
    result = dict(
        config=name,
        policy=policy,
        batch_size=batch_size,
        crop=crop,
        steps_per_run=steps,
        runs_s=times,
        images_per_s_median=batch_size * steps / median(times),
        compile_and_warmup_s=compile_and_warmup_s,
        parameters=int(model.count_params()),
    )
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        result["device"] = device.device_kind
        stats = device.memory_stats() or {}  # None on CPU devices
        if "peak_bytes_in_use" in stats:
            result["peak_memory_gib"] = stats["peak_bytes_in_use"] / 2**30
    elif backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_logical_devices("GPU")
        if gpus:
            info = tf.config.experimental.get_memory_info("GPU:0")
            result["peak_memory_gib"] = info["peak"] / 2**30
    result["backend"] = backend
    return result


def main(argv=None):
    parser = bench_parser(__doc__, out="bench/results/gpu_training.json")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS))
    parser.add_argument("--policies", nargs="+", default=["mixed_bfloat16"])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--crop", type=int, default=321)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup-steps", type=int, default=2)
    parser.add_argument("--one", nargs=2, metavar=("CONFIG", "POLICY"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.one:
        result = run_one(
            args.one[0], args.one[1], args.batch_size, args.crop, args.steps, args.warmup_steps
        )
        print("RESULT " + json.dumps(result), flush=True)
        return

    results = []
    for policy in args.policies:
        for name in args.configs:
            cmd = bench_command(
                "gpu_training",
                "--one",
                name,
                policy,
                f"--batch-size={args.batch_size}",
                f"--crop={args.crop}",
                f"--steps={args.steps}",
                f"--warmup-steps={args.warmup_steps}",
            )
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPOSITORY_ROOT)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode or not lines:
                print(proc.stdout[-2000:], proc.stderr[-4000:], file=sys.stderr)
                results.append(dict(config=name, policy=policy, error=proc.stderr[-500:]))
                continue
            result = json.loads(lines[-1][len("RESULT ") :])
            print(
                f"{name:28s} {policy:15s} {result['images_per_s_median']:8.1f} img/s  "
                f"peak {result.get('peak_memory_gib', float('nan')):6.2f} GiB  "
                f"(compile+warm-up {result['compile_and_warmup_s']:.0f} s)",
                flush=True,
            )
            results.append(result)
    report = dict(
        command="KERAS_BACKEND="
        + os.environ.get("KERAS_BACKEND", "tensorflow")
        + " "
        + command_line("gpu_training", argv),
        date=time.strftime("%Y-%m-%d"),
        host=platform.node(),
        results=results,
    )
    write_json(args.out, report)


if __name__ == "__main__":
    main()
