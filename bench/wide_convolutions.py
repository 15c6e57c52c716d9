"""One wide k x k convolution in TFLite (XNNPACK), whole and split over input channels.

The per-op profile (`bench/op_profile.py`) showed the FCN head's 3x3 2048 -> 512 convolution at
a quarter of the peak. This times, for each shape, the convolution as one CONV_2D and as the sum
of 2, 4 or 8 CONV_2Ds over equal input-channel groups (what `rignet_keras.export.layout` does),
each a one-op graph converted from TensorFlow, in interleaved rounds, with the largest output
difference against the whole convolution.

Usage:
    python -m bench.wide_convolutions --out bench/results/wide_convolutions.json
"""

import os
import sys

import numpy as np

from bench.common import (
    RESULTS_DIR,
    bench_parser,
    command_line,
    interleaved_latency,
    machine,
    write_json,
)

# (side, input channels, filters): the ResNet-50 FCN head at 512x512 and 321x321, the B5 gate at
# 512x512, the B4 gate, the MobileNetV2 FCN head, a 768-channel input, the ASPP classifier.
SHAPES = [
    (16, 2048, 512),
    (11, 2048, 512),
    (8, 2048, 1024),
    (16, 1024, 512),
    (16, 1280, 512),
    (16, 768, 256),
    (16, 2048, 21),
]


def tflite_conv(weights, bias, side, parts):
    import tensorflow as tf

    channels = weights.shape[2]
    bounds = [round(i * channels / parts) for i in range(parts + 1)]

    @tf.function(input_signature=[tf.TensorSpec((1, side, side, channels), tf.float32)])
    def conv(x):
        y = bias
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            y = y + tf.nn.conv2d(x[..., a:b], weights[:, :, a:b, :], 1, "SAME")
        return tf.nn.relu(y)

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [conv.get_concrete_function()], conv
    )
    return converter.convert()


def main(argv=None):
    p = bench_parser(
        __doc__,
        full_doc=True,
        threads=2,
        rounds=5,
        repeats=10,
        out=os.path.join(RESULTS_DIR, "wide_convolutions.json"),
        helps={
            "threads": "LiteRT's threads (default: %(default)s)",
            "repeats": "timed calls of each variant per round (default: %(default)s)",
        },
    )
    args = p.parse_args(argv)
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    rng = np.random.default_rng(0)
    rows = []
    for side, channels, filters in SHAPES:
        weights = tf.constant(0.01 * rng.normal(size=(3, 3, channels, filters)).astype("float32"))
        bias = tf.constant(rng.normal(size=(filters,)).astype("float32"))
        x = rng.normal(size=(1, side, side, channels)).astype("float32")
        counts = sorted({1, 2, 4, 8, -(-channels // 512)})
        variants = {f"{n} x {round(channels / n)}": n for n in counts if channels // n >= 128}
        interpreters, outputs = {}, {}
        for name, parts in variants.items():
            it = Interpreter(
                model_content=tflite_conv(weights, bias, side, parts), num_threads=args.threads
            )
            it.allocate_tensors()
            it.set_tensor(it.get_input_details()[0]["index"], x)
            it.invoke()
            outputs[name] = it.get_tensor(it.get_output_details()[0]["index"])
            interpreters[name] = it
        calls = {name: interpreters[name].invoke for name in variants}
        latency = interleaved_latency(
            calls, args.rounds, args.repeats, warmup=0, round_warmup=1, order="alternate"
        )
        macs = side * side * 9 * channels * filters
        whole = next(iter(variants))
        for name in variants:
            stats = dict(latency[name])
            stats.update(
                shape=f"3x3 {channels}->{filters} at {side}x{side}",
                split=name,
                gmacs=macs / 1e9,
                gflops=2 * macs / (stats["median_ms"] / 1e3) / 1e9,
                speedup=latency[whole]["median_ms"] / latency[name]["median_ms"],
                max_abs_diff=float(np.abs(outputs[name] - outputs[whole]).max()),
            )
            rows.append(stats)
            print(
                f"{stats['shape']:26s} {name:10s} {stats['median_ms']:7.2f} ms "
                f"{stats['gflops']:6.0f} GFLOP/s  x{stats['speedup']:.2f}  "
                f"max diff {stats['max_abs_diff']:.1e}",
                flush=True,
            )
    write_json(
        args.out,
        dict(
            machine=machine(),
            threads=args.threads,
            rows=rows,
            command=command_line("wide_convolutions", argv),
        ),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
