"""Per-op profile of a TFLite graph and of an ONNX graph: where the milliseconds of a model go.

LiteRT's Python API has no per-op timing and its libraries carry no symbols for `perf`, so the
TFLite profile is taken op by op: every operator of the chosen signature is cut out of the
file into a one-op model (its own tensors, weights and options, through LiteRT's flatbuffer
tools), run alone through the same XNNPACK delegate with the same threads, and timed. Identical
ops (same code, shapes and options) are timed once and counted as often as they occur. The sum
over the ops is compared with the whole graph's latency measured in the same run: what the
isolated ops do not add up to is what the graph spends between them.

The ONNX profile is onnxruntime's own (`SessionOptions.enable_profiling`): the duration of every
node in a number of runs, summed per node and per op type.

Convolutions get their multiply-adds from the shapes (output elements x kernel volume x input
channels per group), so each row shows its GFLOP/s and its share of the peak in
`bench/results/peak.json`.

Usage:
    python -m bench.op_profile --tflite model.tflite --signature ui_2 --onnx model_ui2.onnx \\
        --label "resnet50 Pu<6..4> ui=2 512x512" --out bench/results/op_profile.json
    python -m bench.op_profile --report        # the tables of --out, as Markdown
"""

import collections
import json
import os
import sys
import tempfile
import time

import numpy as np

from bench.common import (
    RESULTS_DIR,
    bench_parser,
    machine,
    measure_latency,
    summary_ms,
    time_calls,
    write_json,
)

CONVOLUTIONS = ("CONV_2D", "DEPTHWISE_CONV_2D", "Conv", "FusedConv")


# ---------------------------------------------------------------------------------------------
# TFLite: one-op models cut out of the graph


def _opcode_names():
    from ai_edge_litert import schema_py_generated as schema

    return {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}


def _subgraph_index(model, signature):
    if signature is None:
        return 0
    for sig in model.signatureDefs or []:
        key = sig.signatureKey.decode() if isinstance(sig.signatureKey, bytes) else sig.signatureKey
        if key == signature:
            return sig.subgraphIndex
    keys = [s.signatureKey for s in model.signatureDefs or []]
    raise SystemExit(f"no signature {signature!r} in the file; it has {keys}")


def _is_constant(model, tensor):
    buffer = model.buffers[tensor.buffer] if tensor.buffer < len(model.buffers) else None
    if buffer is not None and getattr(buffer, "offset", 0) > 1:
        raise ValueError("weights stored outside the flatbuffer (over 2 GB) are not supported")
    return buffer is not None and buffer.data is not None and len(buffer.data) > 0


def one_op_model(model, graph, op):
    """A ModelT holding `op` alone: its inputs that are not constants become graph inputs."""
    import copy

    from ai_edge_litert import schema_py_generated as schema

    single = schema.ModelT()
    single.version = model.version
    single.operatorCodes = [model.operatorCodes[op.opcodeIndex]]
    single.buffers = [schema.BufferT()]
    single.description = "one op"
    tensors, index_of = [], {}

    def add(i):
        if i < 0:
            return -1
        if i not in index_of:
            tensor = copy.copy(graph.tensors[i])
            tensor.shapeSignature = None  # static shapes: the graph is at a fixed size
            if _is_constant(model, graph.tensors[i]):
                single.buffers.append(model.buffers[graph.tensors[i].buffer])
                tensor.buffer = len(single.buffers) - 1
            else:
                single.buffers.append(schema.BufferT())
                tensor.buffer = len(single.buffers) - 1
            index_of[i] = len(tensors)
            tensors.append(tensor)
        return index_of[i]

    new_op = copy.copy(op)
    new_op.opcodeIndex = 0
    new_op.inputs = [add(i) for i in op.inputs]
    new_op.outputs = [add(i) for i in op.outputs]
    intermediates = () if op.intermediates is None else op.intermediates
    new_op.intermediates = [add(int(i)) for i in intermediates]
    sub = schema.SubGraphT()
    sub.tensors = tensors
    sub.operators = [new_op]
    sub.inputs = [
        index_of[i] for i in op.inputs if i >= 0 and not _is_constant(model, graph.tensors[i])
    ]
    sub.outputs = list(new_op.outputs)
    sub.name = "op"
    single.subgraphs = [sub]
    return single


def _shape(tensor):
    return tuple(int(d) for d in (tensor.shape if tensor.shape is not None else ()))


def _macs(name, graph, op):
    """Multiply-adds of a convolution from its shapes; 0 for other ops."""
    if name not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        return 0
    out = _shape(graph.tensors[op.outputs[0]])
    weights = _shape(graph.tensors[op.inputs[1]])  # CONV_2D: (O, kh, kw, I); DW: (1, kh, kw, O)
    if name == "CONV_2D":
        return int(np.prod(out)) * weights[1] * weights[2] * weights[3]
    return int(np.prod(out)) * weights[1] * weights[2]


def _describe(name, graph, op):
    inputs = [_shape(graph.tensors[i]) for i in op.inputs if i >= 0]
    out = _shape(graph.tensors[op.outputs[0]])
    if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        o = op.builtinOptions
        w = inputs[1]
        kernel = f"{w[1]}x{w[2]}"
        stride = f"/{o.strideH}" if o.strideH > 1 else ""
        dilation = f" d{o.dilationHFactor}" if getattr(o, "dilationHFactor", 1) > 1 else ""
        return f"{kernel}{stride}{dilation} {inputs[0][-1]}->{out[-1]} at {out[1]}x{out[2]}"
    return f"{inputs[0] if inputs else ()} -> {out}"


def _options_key(op):
    """The op's options as a string: ops with the same code, shapes and options are alike."""
    opts = op.builtinOptions
    return repr(sorted(vars(opts).items())) if opts is not None else ""


def _time_interpreter(interpreter, seconds, min_runs):
    """Median seconds of `invoke()`, repeating for about `seconds` (at least `min_runs`)."""
    interpreter.invoke()
    start = time.perf_counter()
    interpreter.invoke()
    once = max(time.perf_counter() - start, 1e-6)
    runs = max(min_runs, min(200, int(seconds / once)))
    return time_calls(interpreter.invoke, repeats=runs, warmup=1)


def profile_tflite(path, signature, threads, seconds_per_op):
    """Times every op of `signature` alone; returns rows and the whole graph's latency."""
    from ai_edge_litert.tools import flatbuffer_utils

    with open(path, "rb") as f:
        model = flatbuffer_utils.read_model_from_bytearray(bytearray(f.read()))
    graph = model.subgraphs[_subgraph_index(model, signature)]
    names = _opcode_names()
    rng = np.random.default_rng(0)
    timed = {}  # key -> seconds list
    rows = []
    for position, op in enumerate(graph.operators):
        code = model.operatorCodes[op.opcodeIndex]
        name = names.get(max(code.builtinCode, code.deprecatedBuiltinCode), str(code.builtinCode))
        tensors = [graph.tensors[i] for i in list(op.inputs) + list(op.outputs) if i >= 0]
        key = (name, tuple((_shape(t), t.type) for t in tensors), _options_key(op))
        if key not in timed:
            try:
                timed[key] = _time_one_op(model, graph, op, threads, seconds_per_op, rng)
            except Exception as error:  # noqa: BLE001  (a control-flow or custom op: recorded)
                timed[key] = f"{type(error).__name__}: {error}"
        row = dict(
            position=position, op=name, what=_describe(name, graph, op), macs=_macs(name, graph, op)
        )
        if isinstance(timed[key], str):
            row.update(median_ms=0.0, not_timed=timed[key])
        else:
            row["median_ms"] = summary_ms(timed[key])["median_ms"]
        rows.append(row)
    return rows


def _time_one_op(model, graph, op, threads, seconds, rng):
    """Seconds of each timed call of `op` alone (float inputs random, integer inputs 0 or 1)."""
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_litert.tools import flatbuffer_utils

    content = bytes(flatbuffer_utils.convert_object_to_bytearray(one_op_model(model, graph, op)))
    interpreter = Interpreter(model_content=content, num_threads=threads)
    interpreter.allocate_tensors()
    for detail in interpreter.get_input_details():
        dtype = detail["dtype"]
        if np.issubdtype(dtype, np.floating):
            value = rng.normal(size=detail["shape"]).astype(dtype)
        else:
            value = rng.integers(0, 2, size=detail["shape"]).astype(dtype)
        interpreter.set_tensor(detail["index"], value)
    return _time_interpreter(interpreter, seconds, 5)


def whole_graph_ms(path, signature, threads, repeats=15):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path, num_threads=threads)
    signature = signature or next(iter(interpreter.get_signature_list()))
    runner = interpreter.get_signature_runner(signature)
    inputs = {}
    for name, detail in runner.get_input_details().items():
        dtype = detail["dtype"]
        inputs[name] = np.random.default_rng(1).integers(0, 255, size=detail["shape"]).astype(dtype)
    return measure_latency(lambda: runner(**inputs), runs=repeats, warmup=2)


# ---------------------------------------------------------------------------------------------
# onnxruntime: its own profiler


ONNX_CONVOLUTIONS = ("Conv", "FusedConv")


def _onnx_conv_macs(node_args):
    """Multiply-adds of an ORT Conv event from its recorded shapes."""
    shapes = [list(d.values())[0] for d in node_args.get("input_type_shape", [])]
    outs = [list(d.values())[0] for d in node_args.get("output_type_shape", [])]
    if len(shapes) < 2 or not outs:
        return 0
    w, out = shapes[1], outs[0]  # weights (O, I/groups, kh, kw); output (N, O, H, W)
    return int(np.prod(out)) * int(np.prod(w[1:]))


def profile_onnx(path, threads, runs):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.enable_profiling = True
    options.profile_file_prefix = os.path.join(tempfile.mkdtemp(), "ort")
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    feeds = {}
    for i in session.get_inputs():
        shape = [d if isinstance(d, int) else 1 for d in i.shape]
        feeds[i.name] = (
            np.random.default_rng(1)
            .integers(0, 255, size=shape)
            .astype(np.uint8 if "uint8" in i.type else np.float32)
        )
    warmup = 2
    mean_ms = summary_ms(time_calls(lambda: session.run(None, feeds), runs, warmup))["mean_ms"]
    trace = session.end_profiling()
    with open(trace) as f:
        events = json.load(f)
    model_runs = sorted(
        (e for e in events if e.get("cat") == "Session" and e["name"] == "model_run"),
        key=lambda e: e["ts"],
    )
    timed_from = model_runs[warmup]["ts"]  # the warm-up runs are in the trace too: leave them
    per_node = collections.defaultdict(lambda: dict(us=0.0, macs=0, op=""))
    for e in events:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time"):
            continue
        if e["ts"] < timed_from:
            continue
        node = per_node[e["name"][: -len("_kernel_time")]]
        node["us"] += e["dur"]
        node["op"] = e["args"].get("op_name", "")
        if node["op"] in ONNX_CONVOLUTIONS:
            node["macs"] = _onnx_conv_macs(e["args"])
    timed_runs = len(model_runs) - warmup
    # "median_ms" for the rows' common key; for onnxruntime it is the mean over the timed runs.
    rows = [
        dict(node=name, op=v["op"], macs=v["macs"], median_ms=v["us"] / 1e3 / timed_runs)
        for name, v in per_node.items()
    ]
    return rows, mean_ms, timed_runs


# ---------------------------------------------------------------------------------------------
# Report


def _peak(path):
    try:
        with open(path) as f:
            peak = json.load(f)
        return peak["peak_float32"]["gflops"]
    except (OSError, KeyError, ValueError):
        return None


def summarize(rows, total_ms, peak):
    """Per op type: ms, share of the summed ops, GFLOP/s and share of peak for convolutions."""
    by_type = collections.OrderedDict()
    for r in sorted(rows, key=lambda r: -r["median_ms"]):
        t = by_type.setdefault(r["op"], dict(ms=0.0, count=0, macs=0))
        t["ms"] += r["median_ms"]
        t["count"] += 1
        t["macs"] += r["macs"]
    summed = sum(t["ms"] for t in by_type.values())
    lines = ["| op | count | ms | share | GFLOP/s | % of peak |", "|---|---|---|---|---|---|"]
    for name, t in sorted(by_type.items(), key=lambda kv: -kv[1]["ms"]):
        gflops = 2 * t["macs"] / (t["ms"] / 1e3) / 1e9 if t["macs"] else None
        rate = f"{gflops:.0f}" if gflops else ""
        share = f"{100 * gflops / peak:.0f}%" if gflops and peak else ""
        lines.append(
            f"| {name} | {t['count']} | {t['ms']:.1f} | {100 * t['ms'] / summed:.0f}% "
            f"| {rate} | {share} |"
        )
    lines.append(f"| **sum of ops** | {len(rows)} | {summed:.1f} | | | |")
    lines.append(f"| whole graph | | {total_ms:.1f} | | | |")
    return "\n".join(lines)


def conv_classes(rows, peak):
    """Convolutions grouped by kernel, stride and output size: where the GEMMs fall short."""
    groups = collections.OrderedDict()
    for r in rows:
        if r["op"] not in CONVOLUTIONS or not r["macs"]:
            continue
        g = groups.setdefault(r["what"], dict(ms=0.0, count=0, macs=0))
        g["ms"] += r["median_ms"]
        g["count"] += 1
        g["macs"] += r["macs"]
    lines = ["| convolution | count | ms | GMACs | GFLOP/s | % of peak |"]
    lines.append("|---|---|---|---|---|---|")
    for what, g in sorted(groups.items(), key=lambda kv: -kv[1]["ms"]):
        gflops = 2 * g["macs"] / (g["ms"] / 1e3) / 1e9
        share = f"{100 * gflops / peak:.0f}%" if peak else ""
        lines.append(
            f"| {what} | {g['count']} | {g['ms']:.1f} | {g['macs'] / 1e9:.2f} | {gflops:.0f} "
            f"| {share} |"
        )
    return "\n".join(lines)


def report(results, peak):
    out = []
    for entry in results.get("profiles", []):
        out.append(f"**{entry['label']}** ({entry['machine']['date']}, {entry['threads']} threads)")
        out.append("")
        if "tflite" in entry:
            t = entry["tflite"]
            out += [f"TFLite `{t['signature']}`, each op alone (XNNPACK):", ""]
            out += [summarize(t["rows"], t["whole_graph"]["median_ms"], peak), ""]
            out += [conv_classes(t["rows"], peak), ""]
        if "onnx" in entry:
            o = entry["onnx"]
            out += [f"onnxruntime profiler ({o['runs']} runs):", ""]
            out += [summarize(o["rows"], o["mean_ms"], peak), ""]
    return "\n".join(out)


def main(argv=None):
    p = bench_parser(
        __doc__,
        full_doc=True,
        threads=2,
        out=os.path.join(RESULTS_DIR, "op_profile.json"),
        helps={"threads": "threads of LiteRT and onnxruntime (default: %(default)s)"},
    )
    p.add_argument("--tflite", help="a .tflite file")
    p.add_argument("--signature", help="its signature (default: the first subgraph)")
    p.add_argument("--onnx", help="an .onnx file of the same graph")
    p.add_argument("--label", default="")
    p.add_argument("--seconds-per-op", type=float, default=0.3)
    p.add_argument("--onnx-runs", type=int, default=10)
    p.add_argument("--peak", default=os.path.join(RESULTS_DIR, "peak.json"))
    p.add_argument("--report", action="store_true", help="print the tables of --out")
    args = p.parse_args(argv)
    results = {"profiles": []}
    if os.path.isfile(args.out):
        with open(args.out) as f:
            results = json.load(f)
    if args.report:
        print(report(results, _peak(args.peak)))
        return 0
    if not (args.tflite or args.onnx):
        raise SystemExit("give --tflite and/or --onnx (or --report)")
    entry = dict(label=args.label, threads=args.threads, machine=machine())
    if args.tflite:
        rows = profile_tflite(args.tflite, args.signature, args.threads, args.seconds_per_op)
        whole = whole_graph_ms(args.tflite, args.signature, args.threads)
        entry["tflite"] = dict(
            file=os.path.basename(args.tflite),
            signature=args.signature,
            rows=rows,
            whole_graph=whole,
        )
        print(summarize(rows, whole["median_ms"], _peak(args.peak)), flush=True)
    if args.onnx:
        rows, mean_ms, runs = profile_onnx(args.onnx, args.threads, args.onnx_runs)
        entry["onnx"] = dict(
            file=os.path.basename(args.onnx), rows=rows, mean_ms=mean_ms, runs=runs
        )
        print(summarize(rows, mean_ms, _peak(args.peak)), flush=True)
    results["profiles"] = [e for e in results["profiles"] if e["label"] != args.label] + [entry]
    write_json(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
