"""The machine's peak: the fastest dense kernels that the shipped runtimes have, at a thread count.

Every efficiency figure in BENCHMARKS.md is a share of the highest of these, measured on the same
machine with the same threads:

    tensorflow   matmul (oneDNN/Eigen) in float32 and bfloat16 (AMX where the CPU has it)
    tflite       one FULLY_CONNECTED and one 3x3 CONV_2D through LiteRT's XNNPACK delegate
    onnxruntime  one MatMul and one 3x3 Conv through its CPU provider (MLAS)

A convolution network runs on the same GEMM micro-kernels, so the best of these is the ceiling a
model's achieved GFLOP/s is judged against. The theoretical FMA peak (cores x FMA units x lanes x
2 x clock) is printed beside it when the clock can be read; it is higher than any library reaches.

Usage:
    python -m bench.peak --threads 2 --out bench/results/peak.json
"""

import os
import tempfile

from bench.common import (
    bench_parser,
    command_line,
    machine,
    measure_latency,
    set_tf_threads,
    write_json,
)


def _stats(call, flop, repeats):
    """`measure_latency` of `call` (3 warm-up calls), with the GFLOP/s of its median and best."""
    stats = measure_latency(call, runs=repeats, warmup=3)
    stats["gflop"] = flop / 1e9
    stats["gflops_median"] = flop / (stats["median_ms"] / 1e3) / 1e9
    stats["gflops_best"] = flop / (stats["min_ms"] / 1e3) / 1e9
    return stats


def tf_matmul(dtype_name, size, repeats):
    import tensorflow as tf

    dtype = getattr(tf, dtype_name)
    a = tf.cast(tf.random.normal((size, size)), dtype)
    b = tf.cast(tf.random.normal((size, size)), dtype)

    @tf.function
    def matmul(x, y):
        return tf.reduce_sum(tf.cast(tf.matmul(x, y)[:1, :1], tf.float32))

    return _stats(lambda: matmul(a, b).numpy(), 2 * size**3, repeats)


def _tflite_file(fn, spec, workdir, name):
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [fn.get_concrete_function(spec)], fn
    )
    path = os.path.join(workdir, name)
    with open(path, "wb") as f:
        f.write(converter.convert())
    return path


def tflite_kernels(threads, repeats, workdir, gemm=2048, conv=(64, 256)):
    """FULLY_CONNECTED (gemm x gemm x gemm) and CONV_2D 3x3 (hw x hw, c -> c) through XNNPACK."""
    import numpy as np
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    rng = np.random.default_rng(0)
    w = tf.constant(rng.standard_normal((gemm, gemm), dtype=np.float32))
    fc = tf.function(lambda x: tf.matmul(x, w))
    hw, c = conv
    k = tf.constant(rng.standard_normal((3, 3, c, c), dtype=np.float32) * 0.05)
    cv = tf.function(lambda x: tf.nn.conv2d(x, k, 1, "SAME"))
    cases = {
        "fully_connected": (fc, tf.TensorSpec((gemm, gemm), tf.float32), 2 * gemm**3),
        "conv3x3": (cv, tf.TensorSpec((1, hw, hw, c), tf.float32), 2 * hw * hw * c * c * 9),
    }
    out = {}
    for name, (fn, spec, flop) in cases.items():
        path = _tflite_file(fn, spec, workdir, f"{name}.tflite")
        interpreter = Interpreter(model_path=path, num_threads=threads)
        interpreter.allocate_tensors()
        index = interpreter.get_input_details()[0]["index"]
        interpreter.set_tensor(index, rng.standard_normal(spec.shape, dtype=np.float32))
        out[name] = _stats(interpreter.invoke, flop, repeats)
        out[name]["shape"] = list(spec.shape)
    return out


def onnxruntime_kernels(threads, repeats, gemm=2048, conv=(64, 256)):
    """MatMul and 3x3 Conv of the same sizes through onnxruntime's CPU provider."""
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    hw, c = conv
    cases = {
        "matmul": (
            helper.make_node("MatMul", ["x", "w"], ["y"]),
            rng.standard_normal((gemm, gemm), dtype=np.float32),
            (gemm, gemm),
            2 * gemm**3,
        ),
        "conv3x3": (
            helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1]),
            rng.standard_normal((c, c, 3, 3), dtype=np.float32) * 0.05,
            (1, c, hw, hw),
            2 * hw * hw * c * c * 9,
        ),
    }
    out = {}
    for name, (node, weight, shape, flop) in cases.items():
        graph = helper.make_graph(
            [node],
            name,
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
            [numpy_helper.from_array(weight, "w")],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        x = rng.standard_normal(shape, dtype=np.float32)
        out[name] = _stats(lambda s=session, x=x: s.run(None, {"x": x}), flop, repeats)
        out[name]["shape"] = list(shape)
    return out


def theoretical_fma_peak(threads):
    """threads x 2 FMA units x 8 float32 lanes (AVX2) x 2 flop x the clock, when cpuinfo has it."""
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        return None
    mhz = [float(line.split(":")[1]) for line in text.splitlines() if line.startswith("cpu MHz")]
    if not mhz or " fma" not in text:
        return None
    lanes = 16 if " avx512f" in text else 8
    ghz = max(mhz) / 1e3
    return {
        "ghz": ghz,
        "lanes_fp32": lanes,
        "gflops": threads * 2 * lanes * 2 * ghz,
        "assumes": "2 FMA units per core, the reported clock held under load",
    }


def main(argv=None):
    parser = bench_parser(
        __doc__,
        threads=2,
        repeats=10,
        out="bench/results/peak.json",
        helps={
            "threads": "threads of every kernel (TensorFlow's intra-op pool, LiteRT, "
            "onnxruntime) (default: %(default)s)",
            "repeats": "timed calls of each kernel, after 3 warm-up calls (default: %(default)s)",
        },
    )
    parser.add_argument("--size", type=int, default=4096, help="TensorFlow matmul size")
    args = parser.parse_args(argv)

    set_tf_threads(args.threads, 1)
    results = dict(machine=machine(), threads=args.threads, size=args.size)
    results["load_average_at_start"] = [round(v, 2) for v in os.getloadavg()]
    for name in ("float32", "bfloat16"):
        results[name] = tf_matmul(name, args.size, args.repeats)
    with tempfile.TemporaryDirectory() as workdir:
        results["tflite_xnnpack"] = tflite_kernels(args.threads, args.repeats, workdir)
    results["onnxruntime"] = onnxruntime_kernels(args.threads, args.repeats)
    float32 = {
        "tensorflow matmul": results["float32"]["gflops_median"],
        **{f"tflite {k}": v["gflops_median"] for k, v in results["tflite_xnnpack"].items()},
        **{f"onnxruntime {k}": v["gflops_median"] for k, v in results["onnxruntime"].items()},
    }
    best = max(float32, key=float32.get)
    results["peak_float32"] = {"gflops": float32[best], "kernel": best, "all": float32}
    results["theoretical"] = theoretical_fma_peak(args.threads)
    results["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    for name, value in float32.items():
        print(f"{name:28s} {value:8.1f} GFLOP/s float32 (median) at {args.threads} threads")
    print(f"{'tensorflow matmul bfloat16':28s} {results['bfloat16']['gflops_median']:8.1f}")
    print(f"peak: {float32[best]:.1f} GFLOP/s ({best})")
    if results["theoretical"]:
        t = results["theoretical"]
        print(
            f"theoretical FMA peak: {t['gflops']:.1f} GFLOP/s ({t['ghz']:.2f} GHz, {t['assumes']})"
        )
    results["command"] = command_line("peak", argv)
    write_json(args.out, results)


if __name__ == "__main__":
    main()
