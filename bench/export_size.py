"""TFLite file size against the model's parameter bytes, and latency, per gated-batch-norm layout.

Exports one RIGNet twice with `rignet_keras.export.export_model`, once per
`tflite_gated_batch_norm` layout ("corrected": the first pass's batch-norm statistics folded
into one copy of each kernel and a per-channel correction on the gated passes; "folded": each
pass's statistics folded into a kernel copy of its own), at the given precisions, one file per
ui and the file of every ui. For every file: its size, the ratio to the model's parameter bytes
(4 bytes a parameter for float32 and float16 / 2, 1 byte for the int8 precisions), and the
latency of each of its signatures (TFLite on XNNPACK, batch 1, `--threads` threads), both
layouts timed against each other in interleaved rounds (`bench.common.interleaved_latency`).

The two phases can run apart: exporting is minutes a layout (a ResNet-50 TFLite conversion is
several), timing wants a quiet machine. `--rounds 0` exports into `--work-dir` and times nothing;
`--reuse` then times the exports already in `<work-dir>/<layout>` (each folder's manifest must
record the backbone, feedback blocks, classes, size, uis, precisions and layout asked for, and list
only files present as exported) instead of exporting again. The model is built either way (its
parameter count).

The weights are random with batch-norm statistics settled on synthetic images
(`calibrate_batch_norm`: the first pass's and the gated passes' differ, as after training).

Usage (from the repository root):
    python -m bench.export_size --backbone resnet18 --size 321 321 --uis 1 2 \
        --out bench/results/export_size_resnet18.json
    python -m bench.export_size --backbone resnet50 --size 512 512 --uis 1 2 \
        --work-dir /tmp/es/r50_512 --rounds 0 --out /tmp/es/r50_512_export.json
    python -m bench.export_size --backbone resnet50 --size 512 512 --uis 1 2 \
        --work-dir /tmp/es/r50_512 --reuse --out bench/results/export_size_resnet50_512.json
"""

import os
import sys
import tempfile
import time

from bench.common import bench_parser, command_line, interleaved_latency, machine, write_json

LAYOUTS = ("corrected", "folded")
BYTES_PER_PARAMETER = {"float32": 4, "float16": 2, "dynamic_int8": 1, "int8": 1}


def parse_args(argv=None):
    parser = bench_parser(
        __doc__,
        threads=2,
        rounds=6,
        out="bench/results/export_size.json",
        work_dir=None,
        helps={
            "rounds": "interleaved timing rounds; 0: export only, time nothing "
            "(default: %(default)s)",
            "work_dir": "the exports, one folder a layout (default: a new temp folder)",
        },
    )
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--feedback-blocks", type=int, nargs=2, default=[4, 6])
    parser.add_argument("--num-classes", type=int, default=21)
    parser.add_argument("--size", type=int, nargs=2, default=[321, 321])
    parser.add_argument("--uis", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--precisions", nargs="+", default=["float32", "int8"])
    parser.add_argument("--layouts", nargs="+", default=list(LAYOUTS), choices=LAYOUTS)
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="time the exports already in --work-dir/<layout> instead of exporting again",
    )
    args = parser.parse_args(argv)
    if args.rounds < 0:
        parser.error(f"--rounds must be >= 0 (0: export only); received {args.rounds}")
    if args.reuse and not args.work_dir:
        parser.error("--reuse needs --work-dir (the folder of an earlier export)")
    return args


def reused_manifest(folder, args, layout):
    """The manifest of the export in `folder`, loaded with the runtime's `load_manifest`, after
    checking that it is the export `args` ask for in `layout` and that its files are whole.

    Raises:
        SystemExit: one line naming the folder and what differs (or the runtime's message).
    """
    from rignet_runtime import RunnerError, artifact_path, load_manifest, verify_artifact

    try:
        manifest = load_manifest(folder)
    except RunnerError as error:
        raise SystemExit(f"--reuse: {error}") from None
    model = manifest.get("model") or {}
    size = (manifest.get("input") or {}).get("height"), (manifest.get("input") or {}).get("width")
    recorded = {
        "backbone": model.get("backbone"),
        "feedback_blocks": model.get("feedback_blocks"),
        "num_classes": model.get("num_classes"),
        "size": list(size),
        "uis": manifest.get("uis"),
        "precisions": sorted({a.get("precision") for a in manifest["artifacts"]}, key=str),
        "layout": (manifest.get("tflite_layout") or {}).get("gated_batch_norm"),
    }
    asked = {
        "backbone": args.backbone,
        "feedback_blocks": list(args.feedback_blocks),
        "num_classes": args.num_classes,
        "size": list(args.size),
        "uis": list(args.uis),
        "precisions": sorted(set(args.precisions)),
        "layout": layout,
    }
    differ = [f"{k} {recorded[k]!r}, not {asked[k]!r}" for k in asked if recorded[k] != asked[k]]
    if differ:
        raise SystemExit(
            f"--reuse: {manifest['_path']} was exported with {'; '.join(differ)}: export again "
            "without --reuse or pick its --work-dir"
        )
    try:
        for artifact in manifest["artifacts"]:
            verify_artifact(manifest, artifact_path(manifest, artifact))
    except RunnerError as error:
        raise SystemExit(f"--reuse: {error}") from None
    return manifest


def build_model(args):
    import keras

    from rignet_keras import RIGNet
    from rignet_keras.export.samples import synthetic_images
    from rignet_keras.models.calibration import calibrate_batch_norm
    from rignet_keras.preprocessing import normalize

    keras.utils.set_random_seed(0)
    model = RIGNet(
        num_classes=args.num_classes,
        backbone=args.backbone,
        unroll_mode="parallel",
        feedback_blocks=tuple(args.feedback_blocks),
        num_iterations=max(args.uis),
    )
    size = tuple(args.size)
    model.build((None, *size, 3))
    calibrate_batch_norm(model, normalize(synthetic_images(4, size, seed=100), model.preprocessing))
    return model


def main(argv=None):
    args = parse_args(argv)
    started = time.time()
    # Checked before the model is built: a wrong folder is refused in a second, not minutes.
    reused = {}
    if args.reuse:
        reused = {
            layout: reused_manifest(os.path.join(args.work_dir, layout), args, layout)
            for layout in args.layouts
        }
    from rignet_keras.export.samples import synthetic_images
    from rignet_runtime import Segmenter, make_interpreter

    model = build_model(args)
    parameters = int(sum(w.numpy().size for w in model.weights))
    for manifest in reused.values():
        if manifest["model"].get("parameter_count") != model.count_params():
            raise SystemExit(
                f"--reuse: {manifest['_path']} records {manifest['model'].get('parameter_count')} "
                f"parameters; the model built here has {model.count_params()}"
            )
    work = args.work_dir or tempfile.mkdtemp(prefix="rignet_export_size_")
    files, calls = [], {}
    image = synthetic_images(1, tuple(args.size), seed=7)[0]
    for layout in args.layouts:
        if args.reuse:
            manifest, seconds = reused[layout], None
        else:
            manifest, seconds = export_layout(model, os.path.join(work, layout), layout, args)
        for artifact in manifest["artifacts"]:
            path = os.path.join(manifest["_dir"], artifact["file"])
            precision = artifact["precision"]
            weight_bytes = parameters * BYTES_PER_PARAMETER.get(precision, 1)
            entry = {
                "layout": layout,
                "file": artifact["file"],
                "precision": precision,
                "size_bytes": artifact["size_bytes"],
                "parameter_bytes": weight_bytes,
                "ratio": round(artifact["size_bytes"] / weight_bytes, 3),
                "parity": {s["name"]: s["parity"] for s in artifact["signatures"]},
                # None: the file was exported by an earlier run (--reuse).
                "export_seconds": seconds,
                "latency_ms": {},
            }
            files.append(entry)
            print(f"{layout} {artifact['file']}: {entry['ratio']}x parameter bytes", flush=True)
            if args.rounds == 0:  # export only
                continue
            interpreter = make_interpreter(path, args.threads)
            for signature in artifact["signatures"]:
                segmenter = Segmenter(path, signature=signature["name"], interpreter=interpreter)
                key = (len(files) - 1, signature["name"])
                calls[key] = lambda segmenter=segmenter: segmenter(image)
    latencies = {}
    if args.rounds > 0:
        latencies = interleaved_latency(calls, args.rounds, per_round=2, warmup=2)
    for (index, name), figures in latencies.items():
        files[index]["latency_ms"][name] = figures
    result = {
        "command": command_line("export_size", argv),
        "machine": machine(),
        "model": {
            "backbone": args.backbone,
            "feedback_blocks": args.feedback_blocks,
            "size": args.size,
            "parameters": parameters,
            "float32_parameter_bytes": 4 * parameters,
        },
        "threads": args.threads,
        "rounds": args.rounds,  # 0: exported only, not timed
        "work_dir": os.path.abspath(work),
        "reused": args.reuse,  # True: the exports of an earlier run, not exported here
        "files": files,
        "seconds": round(time.time() - started, 1),
    }
    write_json(args.out, result)
    for entry in files:
        timings = ", ".join(
            f"{name} {figures['median_ms']:.1f} ms" for name, figures in entry["latency_ms"].items()
        )
        exported = "reused" if entry["export_seconds"] is None else f"{entry['export_seconds']} s"
        print(
            f"{entry['layout']:9s} {entry['file']:28s} {entry['size_bytes'] / 1e6:7.1f} MB "
            f"{entry['ratio']:.3f}x  export {exported}  {timings}"
        )
    return 0


def export_layout(model, folder, layout, args):
    """Exports `model` into `folder` in one gated-batch-norm layout; returns (its manifest, the
    export's wall-clock seconds)."""
    from rignet_keras.export import export_model

    start = time.perf_counter()
    manifest = export_model(
        model,
        folder,
        input_size=tuple(args.size),
        uis=args.uis,
        precisions=args.precisions,
        tflite_layouts=("multi", "per_ui"),
        tflite_gated_batch_norm=layout,
        stepwise=False,
        latency_runs=0,
        isolate=True,
        overwrite=True,
        strict=False,  # random weights: int8 parity is recorded, not enforced
    )
    return manifest, round(time.perf_counter() - start, 1)


if __name__ == "__main__":
    sys.exit(main())
