"""Training speed and peak memory of FCN and RIGNet at several ui, float32 and mixed_bfloat16.

Each configuration runs in its own process (peak RSS only grows within a process): build the
model, `fit` `--warmup` steps (tracing included), then time `--steps` more steps. The expected
time of a RIGNet step is the FCN step time scaled by the ratio of multiply-accumulates (MACs)
counted from the convolutions at the input size (gates included); "ratio" is measured over
expected (1.0: RIGNet costs exactly its extra MACs).

    python bench/training.py                                  # ResNet-18, 321x321, batch 4
    python bench/training.py --backbone resnet50 --uis 1,2 --steps 2 --precisions float32

Writes bench/results/training.json (merged by backbone and machine).
"""

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))
NUM_CLASSES = 21


def conv_macs(layer, in_shape, out_shape):
    import keras

    kh, kw = layer.kernel_size
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return out_shape[1] * out_shape[2] * kh * kw * in_shape[-1] * layer.depth_multiplier
    groups = getattr(layer, "groups", 1) or 1
    return out_shape[1] * out_shape[2] * kh * kw * in_shape[-1] * layer.filters // groups


def block_macs(block, input_shape):
    """MACs of the convolutions of a functional block at `input_shape` (batch 1)."""
    import keras
    import numpy as np

    convs = [layer for layer in block.layers if isinstance(layer, keras.layers.Conv2D)]
    probe = keras.Model(block.inputs, [c.input for c in convs] + [c.output for c in convs])
    tensors = probe(np.zeros((1,) + tuple(input_shape[1:]), "float32"))
    ins, outs = tensors[: len(convs)], tensors[len(convs) :]
    total = sum(conv_macs(c, i.shape, o.shape) for c, i, o in zip(convs, ins, outs, strict=True))
    out = block(np.zeros((1,) + tuple(input_shape[1:]), "float32"))
    return total, tuple(out.shape)


def network_macs(net, size):
    """(per-block MACs, per-gate MACs) of a RIGNet at size x size."""
    shape = (1, size, size, 3)
    blocks, shapes = [], [shape]
    for block in net.blocks:
        m, shape = block_macs(block, shape)
        blocks.append(m)
        shapes.append(shape)
    gates = {}
    if net.gates:
        first, _ = net.feedback_blocks
        for i, _gate in enumerate(net.gates):
            k = first + i
            x, y = shapes[k - 1], shapes[k]
            pooled = ((y[1] + 1) // 2) * ((y[2] + 1) // 2)
            gates[k] = pooled * 9 * y[-1] * x[-1]  # 3x3 conv, pooled y -> channels of x
    return blocks, gates


def expected_macs(blocks, gates, first, ui):
    """Parallel unroll: blocks before `first` once, the others ui times, gates ui - 1 times."""
    return sum(blocks[: first - 1]) + ui * sum(blocks[first - 1 :]) + (ui - 1) * sum(gates.values())


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
    from rignet_keras.training.strategy import dtype_policy_scope
    from rignet_keras.training.task import TrainingModel

    size, batch = spec["size"], spec["batch"]
    with dtype_policy_scope(spec["precision"]):
        net = RIGNet(
            NUM_CLASSES, backbone=spec["backbone"], num_iterations=spec["ui"],
            feedback_blocks=None if spec["fcn"] else (4, 6),
        )  # fmt: skip
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
    task.fit(data, steps_per_epoch=spec["steps"], epochs=1, verbose=0, shuffle=False,
             callbacks=[StepTimer()])  # fmt: skip
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
        spec, step_s=step, step_s_median=sorted(times)[len(times) // 2], images_per_s=batch / step,
        cpu_s_per_step=sorted(cpu_times)[len(cpu_times) // 2],  # all threads; robust to sharing
        warmup_s=warm, peak_rss_mib=rss, peak_rss_steps_mib=steps_peak,
        cpu_load_avg=os.getloadavg()[0],
        **gpu_stats,
    )  # fmt: skip
    if spec.get("count_macs"):
        blocks, gates = network_macs(net, size)
        result["block_gmacs"] = [b / 1e9 for b in blocks]
        result["gate_gmacs"] = {str(k): v / 1e9 for k, v in gates.items()}
    print("RESULT " + json.dumps(result), flush=True)


def add_expectations(rows, block_gmacs, gate_gmacs, first=4):
    """Adds each row's MACs per image and its step time over the MAC-proportional expectation
    (the FCN of the same precision scaled by the MAC ratio), by wall and by CPU time."""
    blocks = [b * 1e9 for b in block_gmacs]
    gates = {int(k): v * 1e9 for k, v in gate_gmacs.items()}
    fcn_macs = sum(blocks)
    for r in rows:
        for key in ("count_macs", "block_gmacs", "gate_gmacs"):
            r.pop(key, None)
        macs = fcn_macs if r["fcn"] else expected_macs(blocks, gates, first, r["ui"])
        r["gmacs_per_image"] = macs / 1e9
        fcn = next(f for f in rows if f["fcn"] and f["precision"] == r["precision"])
        r["expected_step_s"] = fcn["step_s"] * macs / fcn_macs
        r["ratio_to_mac_expectation"] = r["step_s"] / r["expected_step_s"]
        expected_cpu = fcn["cpu_s_per_step"] * macs / fcn_macs
        r["ratio_to_mac_expectation_cpu_time"] = r["cpu_s_per_step"] / expected_cpu


def run(spec):
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)],
        capture_output=True, text=True,
    )  # fmt: skip
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"benchmark worker failed:\n{proc.stderr[-3000:]}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--backbone", default="resnet18")
    p.add_argument("--size", type=int, default=321)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--uis", default="1,2,4,6")
    p.add_argument("--precisions", default="float32,mixed_bfloat16")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--recompute-ui", type=int, default=6, help="ui of the recompute check; 0: none")
    p.add_argument("--output", default=os.path.join(HERE, "results", "training.json"))
    p.add_argument("--tag", default="", help="suffix of the result's key in the JSON")
    args = p.parse_args(argv)
    if args.worker:
        return worker(json.loads(args.worker))

    base = dict(backbone=args.backbone, size=args.size, batch=args.batch, steps=args.steps,
                warmup=args.warmup, recompute=False)  # fmt: skip
    rows = []
    for precision in args.precisions.split(","):
        configs = [dict(fcn=True, ui=1)] + [dict(fcn=False, ui=int(u)) for u in args.uis.split(",")]
        for c in configs:
            # MACs are counted once, on the first RIGNet (its blocks are the FCN's, plus gates).
            first_rignet = not c["fcn"] and all(r["fcn"] for r in rows)
            spec = dict(base, precision=precision, count_macs=first_rignet, **c)
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
        spec = dict(base, precision="float32", fcn=False, ui=args.recompute_ui, recompute=True,
                    count_macs=False)  # fmt: skip
        r = run(spec)
        rows.append(r)
        print(
            f"float32         RIGNet ui={args.recompute_ui} recompute  "
            f"{r['images_per_s']:6.2f} img/s  peak RSS {r['peak_rss_mib']:7.0f} MiB "
            f"(steps {r['peak_rss_steps_mib']:7.0f})",
            flush=True,
        )

    counted = next(r for r in rows if "block_gmacs" in r)
    block_gmacs, gate_gmacs = counted["block_gmacs"], counted["gate_gmacs"]
    add_expectations(rows, block_gmacs, gate_gmacs)
    record = {
        "command": "python bench/training.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": {
            "cpu": _cpu_name(),
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_avg_at_end": os.getloadavg(),
        },  # fmt: skip
        "block_gmacs_per_image": block_gmacs,
        "gate_gmacs_per_image": gate_gmacs,
        "rows": rows,
    }
    import tensorflow as tf

    record["machine"]["tensorflow"] = tf.__version__
    existing = {}
    if os.path.isfile(args.output):
        with open(args.output, encoding="utf-8") as f:
            existing = json.load(f)
    key = f"{args.backbone}_{args.size}_b{args.batch}_{args.precisions.replace(',', '+')}"
    key += f"_{args.tag}" if args.tag else ""
    existing[key] = record
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as f:
        json.dump(existing, f, indent=2)
    print(f"wrote {args.output} [{key}]")
    return 0


def _cpu_name():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
