"""Latency, file size and accuracy cost of a RIGNet's exports, per ui and precision.

Exports one RIGNet with `rignet_keras.export.export_model` (every conversion in its own process,
one at a time: a ResNet-50 TFLite conversion peaks at several GB), then compares on the same
input image, batch 1, with `--threads` threads:
    the Keras model (`tf.function`, TensorFlow's intra-op threads set to `--threads`),
    every TFLite file (ai_edge_litert, XNNPACK) and signature, per precision,
    every ONNX file (onnxruntime, CPU provider, intra-op threads `--threads`),
with file sizes, MACs and the accuracy cost of each precision (label agreement and mIoU of its
class map against the float Keras model's, on `--parity-images` synthetic images).

The weights are random (no trained checkpoint is bundled) with batch-norm statistics settled on
synthetic images by `rignet_keras.models.calibration.calibrate_batch_norm` (the ungated pass's
and the gated passes' statistics alike), so that predictions are decided maps at every ui; int8
costs on trained weights differ.

Usage (from the repository root):
    python -m bench.export_latency --backbone resnet18 --size 321 321 --uis 1 2 3 4 \
        --out bench/results/export_latency.json
    python -m bench.export_latency --backbone resnet50 --size 321 321 --uis 1 2 3 4 \
        --layouts multi --stepwise-precisions float32 --append --out ...
"""

import datetime
import json
import os
import shutil
import sys
import tempfile
import time

from bench.common import (
    bench_parser,
    command_line,
    interleaved_latency,
    machine,
    set_tf_threads,
    write_json,
)

ALL_PRECISIONS = ["float32", "float16", "dynamic_int8", "int8", "int8_float_gates"]


def parse_args(argv=None):
    parser = bench_parser(
        __doc__,
        threads=2,
        rounds=10,
        out="bench/results/export_latency.json",
        helps={
            "threads": "threads of TFLite, onnxruntime and TensorFlow's intra-op pool "
            "(default: %(default)s)",
            "rounds": "interleaved measurement rounds, every graph once per round "
            "(default: %(default)s)",
        },
    )
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--unroll-mode", default="parallel")
    parser.add_argument("--feedback-blocks", type=int, nargs=2, default=[4, 6])
    parser.add_argument(
        "--fcn", action="store_true", help="the feed-forward baseline: no gates, ui = 1 only"
    )
    parser.add_argument("--num-classes", type=int, default=21)
    parser.add_argument("--size", type=int, nargs=2, default=[321, 321])
    parser.add_argument("--uis", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--precisions", nargs="+", default=ALL_PRECISIONS)
    parser.add_argument("--layouts", nargs="+", default=["multi", "per_ui"])
    parser.add_argument(
        "--stepwise-precisions",
        nargs="+",
        default=["float32", "int8"],
        help='precisions of the step-wise init/step files; "none" for none',
    )
    parser.add_argument("--per-round", type=int, default=2, help="timed calls per round")
    parser.add_argument("--parity-images", type=int, default=4)
    parser.add_argument("--calibration-images", type=int, default=8)
    parser.add_argument("--no-onnx", action="store_true")
    parser.add_argument("--workdir", help="keep the export here (default: a removed temp dir)")
    parser.add_argument(
        "--export-only",
        action="store_true",
        help="export into --workdir and stop (measure later with --reuse on a quiet machine)",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="re-measure the export already in --workdir (skip exporting)",
    )
    parser.add_argument(
        "--append", action="store_true", help="add this run to the runs already in --out"
    )
    parser.add_argument(
        "--markdown",
        metavar="JSON",
        help="print the runs of a results file as Markdown tables and exit",
    )
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.stepwise_precisions == ["none"]:
        args.stepwise_precisions = []
    if args.fcn:
        args.uis, args.stepwise_precisions, args.layouts = [1], [], ["multi"]
    if args.export_only and not args.workdir:
        raise SystemExit("--export-only needs --workdir (where the export is kept)")
    if args.markdown:
        with open(args.markdown) as f:
            for run in json.load(f)["runs"]:
                print(markdown_tables(run))
        return 0
    # Before any op runs: the Keras baseline uses the same thread count as TFLite and ORT.
    set_tf_threads(args.threads, 1)
    import keras
    import tensorflow as tf

    from rignet_keras import RIGNet
    from rignet_keras.export import export_model
    from rignet_keras.export.samples import synthetic_images
    from rignet_keras.models.calibration import calibrate_batch_norm
    from rignet_keras.preprocessing import normalize
    from rignet_runtime import AnytimeSegmenter, Segmenter, make_interpreter
    from rignet_runtime.stepping import stepwise_calls

    started = time.time()
    machine_start = machine()
    size = tuple(args.size)
    if not args.reuse:
        keras.utils.set_random_seed(0)
        model = RIGNet(
            num_classes=args.num_classes,
            backbone=args.backbone,
            unroll_mode=args.unroll_mode,
            feedback_blocks=None if args.fcn else tuple(args.feedback_blocks),
            num_iterations=max(args.uis),
        )
        model.build((None, *size, 3))
        # Moving statistics of the ungated pass and of the gated passes (ui >= 2) alike.
        calibration = synthetic_images(4, size, seed=100)
        calibrate_batch_norm(model, normalize(calibration, model.preprocessing))

    workdir = args.workdir or tempfile.mkdtemp(prefix="rignet_export_bench_")
    out_dir = os.path.join(workdir, "export")
    # "keras": --reuse loads the exported model.keras.
    formats = ("keras", "tflite") if args.no_onnx else ("keras", "tflite", "onnx")
    if args.reuse:
        from rignet_runtime import load_manifest

        manifest = load_manifest(out_dir)
        model = keras.models.load_model(os.path.join(out_dir, "model.keras"))
    else:
        manifest = export_model(
            model,
            out_dir,
            input_size=size,
            uis=args.uis,
            formats=formats,
            precisions=args.precisions,
            tflite_layouts=args.layouts,
            stepwise_precisions=args.stepwise_precisions,
            num_parity_images=args.parity_images,
            num_calibration_images=args.calibration_images,
            latency_runs=0,
            threads=args.threads,
            isolate=True,
            overwrite=True,
            strict=False,
        )
    export_seconds = round(time.time() - started, 1)
    if args.export_only:
        print(f"exported to {out_dir} in {export_seconds:.0f} s")
        return 0
    macs_by_ui = {
        sig.get("ui"): sig.get("macs")
        for artifact in manifest["artifacts"]
        for sig in artifact["signatures"]
        if sig.get("macs")
    }

    # Every graph on the same image (the exporter's first parity image), measured in
    # interleaved rounds so that a busy machine slows all of them alike.
    image = synthetic_images(args.parity_images, size, seed=0)[:1]
    graphs = {}
    for ui in args.uis:
        fn = tf.function(
            lambda x, ui=ui: model(
                normalize(x, model.preprocessing), training=False, num_iterations=ui
            ),
            autograph=False,
        )
        x = tf.constant(image)
        graphs[("keras_tf_function", None, f"ui_{ui}")] = lambda fn=fn, x=x: fn(x).numpy()
    for artifact in manifest["artifacts"]:
        path = os.path.join(out_dir, artifact["file"])
        if artifact["format"] == "tflite":
            interpreter = make_interpreter(path, args.threads)
            if artifact["kind"] == "stepwise":
                anytime = AnytimeSegmenter(path, interpreter=interpreter)
                init, step = stepwise_calls(anytime.graph, image)
                graphs[("tflite", artifact["file"], "init")] = init
                graphs[("tflite", artifact["file"], "step")] = step
            else:
                for sig in artifact["signatures"]:
                    segmenter = Segmenter(path, signature=sig["name"], interpreter=interpreter)
                    graphs[("tflite", artifact["file"], sig["name"])] = lambda s=segmenter: s(
                        image[0]
                    )
        elif artifact["format"] == "onnx":
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = args.threads
            options.inter_op_num_threads = 1
            session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
            graphs[("onnxruntime", artifact["file"], artifact["signatures"][0]["name"])] = (
                lambda s=session: s.run(None, {"images": image})
            )
    latency = interleaved_latency(graphs, args.rounds, args.per_round)

    rows = []
    for ui in args.uis:
        rows.append(
            dict(
                runtime="keras_tf_function",
                precision="float32",
                file=None,
                ui=ui,
                signature=f"ui_{ui}",
                size_bytes=None,
                macs=macs_by_ui.get(ui),
                **latency[("keras_tf_function", None, f"ui_{ui}")],
            )
        )
    for artifact in manifest["artifacts"]:
        if artifact["format"] not in ("tflite", "onnx"):
            continue
        runtime = "tflite" if artifact["format"] == "tflite" else "onnxruntime"
        for sig in artifact["signatures"]:
            parity = sig.get("parity") or (sig.get("parity_by_iterations") or [{}])[-1]
            rows.append(
                dict(
                    runtime=runtime,
                    precision=artifact["precision"],
                    file=artifact["file"],
                    kind=artifact["kind"],
                    signature=sig["name"],
                    ui=sig.get("ui"),
                    size_bytes=artifact["size_bytes"],
                    macs=sig.get("macs"),
                    **latency[(runtime, artifact["file"], sig["name"])],
                    label_agreement=parity.get("label_agreement"),
                    decided_label_agreement=parity.get("decided_label_agreement"),
                    miou_vs_keras=parity.get("miou_vs_keras"),
                    max_abs_diff=parity.get("max_abs_diff"),
                    parity_passed=parity.get("passed"),
                    conversion_seconds=(artifact.get("conversion") or {}).get("wall_seconds"),
                    conversion_peak_rss_mb=(artifact.get("conversion") or {}).get("peak_rss_mb"),
                )
            )
    result = {
        "command": command_line("export_latency", argv),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_start,
        "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
        "versions": manifest["versions"],
        "model": {
            k: manifest["model"][k]
            for k in (
                "backbone",
                "unroll_mode",
                "feedback_blocks",
                "num_classes",
                "parameter_count",
            )
        },
        "weights": "random, batch-norm statistics of the ungated and gated passes from 4 synthetic "
        "images (calibrate_batch_norm; no trained checkpoint)",
        "input_size": list(size),
        "threads": args.threads,
        "timing": f"{args.rounds} interleaved rounds x {args.per_round} calls per graph, batch 1, "
        "after 2 warm-up calls; median/p90/mean/min over all calls",
        "parity_data": manifest["parity_data"],
        "calibration_data": manifest["calibration_data"],
        "shared_weights": {
            a["precision"]: a["shared_weights"]
            for a in manifest["artifacts"]
            if "shared_weights" in a
        },
        "rows": rows,
        "export_seconds": export_seconds if not args.reuse else None,
        "wall_seconds": round(time.time() - started, 1),
    }
    runs = []
    if args.append and os.path.exists(args.out):
        with open(args.out) as f:
            previous = json.load(f)
        runs = previous.get("runs", [previous])
    runs.append(result)
    write_json(args.out, {"runs": runs}, indent=1)
    print(format_table(result))
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def format_table(result):
    """The rows as a text table: runtime, precision, signature, ms, size, agreement."""
    lines = [
        f"{result['model']['backbone']} {result['model']['unroll_mode']} "
        f"{result['input_size']} threads={result['threads']}",
        f"{'runtime':<18}{'precision':<18}{'file':<36}{'sig':<6}{'median':>8}{'p90':>8}"
        f"{'MB':>7}{'agree':>8}{'mIoU':>7}",
    ]
    for r in result["rows"]:
        size = f"{r['size_bytes'] / 1e6:.1f}" if r.get("size_bytes") else "-"
        agree = r.get("decided_label_agreement")
        miou = r.get("miou_vs_keras")
        lines.append(
            f"{r['runtime']:<18}{r['precision']:<18}{str(r.get('file') or '-'):<36}"
            f"{str(r.get('signature') or 'ui_' + str(r['ui'])):<6}"
            f"{r.get('median_ms', float('nan')):>8.1f}{r.get('p90_ms', float('nan')):>8.1f}"
            f"{size:>7}{(f'{agree:.4f}' if agree is not None else '-'):>8}"
            f"{(f'{miou:.3f}' if miou is not None else '-'):>7}"
        )
    return "\n".join(lines)


def markdown_tables(result):
    """One run as Markdown: latency per ui and runtime/precision, then sizes and accuracy cost."""
    rows = [r for r in result["rows"] if r.get("kind") != "stepwise"]
    uis = sorted({r["ui"] for r in rows})
    columns = [("keras_tf_function", "float32", None)]
    for r in rows:
        key = (
            r["runtime"],
            r["precision"],
            "multi" if r.get("file") and not r["file"].startswith("rignet_ui") else None,
        )
        if r["runtime"] == "onnxruntime":
            key = ("onnxruntime", "float32", None)
        if r["runtime"] != "keras_tf_function" and key not in columns:
            columns.append(key)
    # Per-ui files time like the all-ui file (see the JSON): show the all-ui file where both.
    columns = [
        c
        for c in columns
        if c[2] == "multi" or c[0] != "tflite" or (c[0], c[1], "multi") not in columns
    ]

    def cell(runtime, precision, multi, ui):
        for r in rows:
            if r["runtime"] != runtime or r["precision"] != precision or r["ui"] != ui:
                continue
            is_multi = bool(r.get("file")) and not r["file"].startswith("rignet_ui")
            if runtime == "tflite" and is_multi != (multi == "multi"):
                continue
            return f"{r['median_ms']:.0f} / {r['p90_ms']:.0f} / {r['min_ms']:.0f}"
        return "-"

    model = result["model"]
    gates = (
        f"RIGNet, {model['unroll_mode']} <6..{model['feedback_blocks'][0]}>"
        if model["feedback_blocks"]
        else "FCN"
    )
    lines = [
        f"**{model['backbone']} {gates},"
        f" {model['num_classes']} classes, {result['input_size'][0]}x{result['input_size'][1]},"
        f" {result['threads']} threads** ({result['date']}; load average at start "
        f"{result['machine']['load_average']}, at end {result['load_average_at_end']})",
        "",
        "Latency, ms (median / p90 / min):",
        "",
        "| ui | "
        + " | ".join(
            (
                "Keras tf.function"
                if rt == "keras_tf_function"
                else "onnxruntime fp32"
                if rt == "onnxruntime"
                else f"TFLite {p}"
            )
            for rt, p, m in columns
        )
        + " |",
        "|---|" + "---|" * len(columns),
    ]
    for ui in uis:
        lines.append(f"| {ui} | " + " | ".join(cell(rt, p, m, ui) for rt, p, m in columns) + " |")
    steps = [r for r in result["rows"] if r.get("kind") == "stepwise"]
    if steps:
        lines += [
            "",
            "Step-wise graphs, ms (median / p90 / min): "
            + "; ".join(
                f"{r['precision']} {r['signature']} {r['median_ms']:.0f} / {r['p90_ms']:.0f} / "
                f"{r['min_ms']:.0f}"
                for r in steps
            ),
        ]
    lines += [
        "",
        "Files and accuracy cost against the float Keras model (decided-pixel label "
        "agreement / mIoU of the class map, on "
        f"{result['parity_data']['num_images']} synthetic images):",
        "",
        "| file | MB | " + " | ".join(f"ui {ui}" for ui in uis) + " |",
        "|---|---|" + "---|" * len(uis),
    ]
    files = []
    for r in result["rows"]:
        if r.get("file") and r["file"] not in files:
            files.append(r["file"])
    for name in files:
        entries = {r["ui"]: r for r in result["rows"] if r.get("file") == name and r.get("ui")}
        size = next(r["size_bytes"] for r in result["rows"] if r.get("file") == name)
        cells = []
        for ui in uis:
            r = entries.get(ui)
            cells.append(
                f"{r['decided_label_agreement']:.3f} / {r['miou_vs_keras']:.3f}"
                if r and r.get("decided_label_agreement") is not None
                else ""
            )
        lines.append(f"| {name} | {size / 1e6:.1f} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
