"""Training speed and peak memory of FCN and RIGNet at several ui, float32 and mixed_bfloat16.

Each configuration runs in its own process (peak RSS only grows within a process): build the
model, `fit` `--warmup` steps (tracing included), then time `--steps` more steps. The expected
time of a RIGNet step is the FCN step time scaled by the ratio of multiply-accumulates (MACs)
per image, counted by `rignet_keras.profile.count_macs` from the traced graph of the model at
the input size and ui (gates included); "ratio" is measured over expected (1.0: RIGNet costs
exactly its extra MACs).

    python -m bench.training                                  # ResNet-18, 321x321, batch 4
    python -m bench.training --backbone resnet50 --uis 1,2 --steps 2 --precisions float32

Writes bench/results/training.json (merged by backbone and machine).
"""

import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import time

from bench.common import (
    REPOSITORY_ROOT,
    RESULTS_DIR,
    bench_command,
    bench_parser,
    command_line,
    machine,
    median,
    write_json,
)

NUM_CLASSES = 21


def reset_peak_rss():
    """Resets the kernel's peak-RSS mark of this process (Linux >= 4.0), if allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def vm_hwm_mib():
    """The peak RSS (VmHWM) since the last reset, in MiB; None where unavailable."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def worker(spec):
    import keras
    import numpy as np
    import tensorflow as tf

    from rignet_keras import RIGNet
    from rignet_keras.profile import count_macs
    from rignet_keras.training.strategy import dtype_policy_scope
    from rignet_keras.training.task import TrainingModel

    size, batch = spec["size"], spec["batch"]
    with dtype_policy_scope(spec["precision"]):
        net = RIGNet(
            NUM_CLASSES,
            backbone=spec["backbone"],
            num_iterations=spec["ui"],
            feedback_blocks=None if spec["fcn"] else (4, 6),
        )
        net.build((None, size, size, 3))
        task = TrainingModel(net, recompute=spec["recompute"])
        task.compile(optimizer=keras.optimizers.SGD(0.001, momentum=0.9), jit_compile=False)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, size, size, 3)).astype("float32")
    y = rng.integers(0, NUM_CLASSES, (batch, size, size)).astype("int32")
    data = tf.data.Dataset.from_tensors((x, y)).repeat()
    t0 = time.time()
    task.fit(data, steps_per_epoch=spec["warmup"], epochs=1, verbose=0, shuffle=False)
    warm = time.time() - t0
    times, cpu_times = [], []

    class StepTimer(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.t, self.c = time.perf_counter(), time.process_time()

        def on_train_batch_end(self, batch, logs=None):
            times.append(time.perf_counter() - self.t)
            cpu_times.append(time.process_time() - self.c)

    gpu = bool(tf.config.list_physical_devices("GPU"))
    if gpu:
        warm_gpu_peak = tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
        tf.config.experimental.reset_memory_stats("GPU:0")
    reset_peak_rss()  # from here, the peak of the training steps alone (no tracing)
    task.fit(
        data,
        steps_per_epoch=spec["steps"],
        epochs=1,
        verbose=0,
        shuffle=False,
        callbacks=[StepTimer()],
    )
    steps_peak = vm_hwm_mib()
    gpu_stats = {}
    if gpu:
        gpu_stats = {
            "gpu_peak_steps_mib": tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20,
            "gpu_peak_warmup_mib": warm_gpu_peak,
            "gpu": tf.config.experimental.get_device_details(
                tf.config.list_physical_devices("GPU")[0]
            ).get("device_name"),
        }
    # The fastest step: other processes on a shared machine only ever slow a step down.
    step = min(times)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    result = dict(
        spec,
        step_s=step,
        step_s_median=median(times, high=True),
        images_per_s=batch / step,
        cpu_s_per_step=median(cpu_times, high=True),  # all threads; robust to sharing
        warmup_s=warm,
        peak_rss_mib=rss,
        peak_rss_steps_mib=steps_peak,
        cpu_load_avg=os.getloadavg()[0],
        **gpu_stats,
    )
    result["gmacs_per_image"] = count_macs(net, (size, size), num_iterations=spec["ui"]) / 1e9
    print("RESULT " + json.dumps(result), flush=True)


def add_expectations(rows):
    """Adds each row's step time over the MAC-proportional expectation (the FCN of the same
    precision scaled by the ratio of MACs per image), by wall and by CPU time."""
    for r in rows:
        fcn = next(f for f in rows if f["fcn"] and f["precision"] == r["precision"])
        ratio = r["gmacs_per_image"] / fcn["gmacs_per_image"]
        r["expected_step_s"] = fcn["step_s"] * ratio
        r["ratio_to_mac_expectation"] = r["step_s"] / r["expected_step_s"]
        expected_cpu = fcn["cpu_s_per_step"] * ratio
        r["ratio_to_mac_expectation_cpu_time"] = r["cpu_s_per_step"] / expected_cpu


def run(spec):
    proc = subprocess.run(
        bench_command("training", "--worker", json.dumps(spec)),
        capture_output=True,
        text=True,
        cwd=REPOSITORY_ROOT,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"benchmark worker failed:\n{proc.stderr[-3000:]}")


def main(argv=None):
    p = bench_parser(
        __doc__,
        warmup=2,
        output=os.path.join(RESULTS_DIR, "training.json"),
        helps={"warmup": "untimed training steps first, tracing included (default: %(default)s)"},
    )
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--backbone", default="resnet18")
    p.add_argument("--size", type=int, default=321)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--uis", default="1,2,4,6")
    p.add_argument("--precisions", default="float32,mixed_bfloat16")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--recompute-ui", type=int, default=6, help="ui of the recompute check; 0: none")
    p.add_argument("--tag", default="", help="suffix of the result's key in the JSON")
    args = p.parse_args(argv)
    if args.worker:
        return worker(json.loads(args.worker))

    base = dict(
        backbone=args.backbone,
        size=args.size,
        batch=args.batch,
        steps=args.steps,
        warmup=args.warmup,
        recompute=False,
    )
    rows = []
    for precision in args.precisions.split(","):
        configs = [dict(fcn=True, ui=1)] + [dict(fcn=False, ui=int(u)) for u in args.uis.split(",")]
        for c in configs:
            spec = dict(base, precision=precision, **c)
            r = run(spec)
            rows.append(r)
            name = "FCN" if c["fcn"] else f"RIGNet Pu<6..4> ui={c['ui']}"
            print(
                f"{precision:15s} {name:24s} {r['images_per_s']:6.2f} img/s  "
                f"{r['step_s']:6.2f} s/step  {r['cpu_s_per_step']:6.2f} CPU s/step  "
                f"peak RSS {r['peak_rss_mib']:7.0f} MiB (steps {r['peak_rss_steps_mib']:7.0f})",
                flush=True,
            )
    if args.recompute_ui:
        spec = dict(base, precision="float32", fcn=False, ui=args.recompute_ui, recompute=True)
        r = run(spec)
        rows.append(r)
        print(
            f"float32         RIGNet ui={args.recompute_ui} recompute  "
            f"{r['images_per_s']:6.2f} img/s  peak RSS {r['peak_rss_mib']:7.0f} MiB "
            f"(steps {r['peak_rss_steps_mib']:7.0f})",
            flush=True,
        )

    add_expectations(rows)
    record = {
        "command": command_line("training", argv),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": dict(machine(), load_average_at_end=[round(v, 2) for v in os.getloadavg()]),
        "rows": rows,
    }
    existing = {}
    if os.path.isfile(args.output):
        with open(args.output, encoding="utf-8") as f:
            existing = json.load(f)
    key = f"{args.backbone}_{args.size}_b{args.batch}_{args.precisions.replace(',', '+')}"
    key += f"_{args.tag}" if args.tag else ""
    existing[key] = record
    write_json(args.output, existing)
    print(f"wrote {args.output} [{key}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
