"""Latency of exported graphs on this device, and a copy of the manifest that records it.

`benchmark` times every ui signature (and the step-wise `init` and `step`) of a file or of a
manifest's TFLite files. `write_device_manifest` puts those figures into a copy of the
manifest beside it, so that a later `--budget-ms` choice uses this device's latencies instead
of the exporting machine's.
"""

import copy
import os
import platform

import numpy as np

from .atomic import write_json
from .errors import RunnerError
from .images import fit_image
from .latency import measure_latency
from .litert_cache import DEFAULT_THREADS
from .manifest import artifact_path, as_manifest, manifest_precisions, verify_artifact
from .segmenters import AnytimeSegmenter, Segmenter, make_interpreter, ui_signatures
from .stepping import stepwise_calls
from .wire import INIT_SIGNATURE, STEP_SIGNATURE


def benchmark(
    model=None,
    manifest=None,
    precision=None,
    threads=DEFAULT_THREADS,
    runs=20,
    warmup=2,
    image=None,
    weight_cache=None,
):
    """Latency of every ui signature (and the step-wise graph) on one image.

    Args:
        model / manifest: a `.tflite` file, or a manifest (every TFLite file it lists, or those
            of `precision`; each checked against the manifest's size and SHA-256 first).
        threads, runs, warmup: the timing set-up.
        image: uint8 (H, W, 3), resized to the graphs' size, or None for a fixed random image.
        weight_cache: a folder for the XNNPACK weight cache (see `make_interpreter`): the
            graphs then run in `CompiledModel`; None: the classic Interpreter.

    Returns:
        A list of dicts {"file", "precision", "signature", "ui", "median_ms", "p90_ms",
        "mean_ms", "min_ms", "runs", "threads"}.
    """
    if (model is None) == (manifest is None):
        raise RunnerError("give exactly one of a .tflite model and a manifest")
    if manifest is not None:
        manifest = as_manifest(manifest)
        files = [
            (artifact_path(manifest, a), a["precision"])
            for a in manifest["artifacts"]
            if a["format"] == "tflite" and (precision is None or a["precision"] == precision)
        ]
        if not files:
            raise RunnerError(
                f"the manifest holds no TFLite graph at precision {precision!r}; "
                f"available: {manifest_precisions(manifest)}"
            )
        for path, _ in files:
            verify_artifact(manifest, path)
    else:
        files = [(os.fspath(model), None)]
    rows = []
    for path, file_precision in files:
        interpreter = make_interpreter(path, threads, weight_cache)

        def row(signature, ui, latency, path=path, file_precision=file_precision):
            return dict(
                file=path,
                precision=file_precision,
                signature=signature,
                ui=ui,
                threads=threads,
                **latency,
            )

        for ui in ui_signatures(interpreter):
            segmenter = Segmenter(path, ui=ui, interpreter=interpreter)
            x = _bench_image(image, segmenter.input_size)
            lat = measure_latency(lambda s=segmenter, x=x: s(x), runs, warmup)
            rows.append(row(segmenter.signature, ui, lat))
        signatures = interpreter.get_signature_list()
        if INIT_SIGNATURE in signatures and STEP_SIGNATURE in signatures:
            anytime = AnytimeSegmenter(path, interpreter=interpreter)
            x = _bench_image(image, anytime.input_size)
            init_call, step_call = stepwise_calls(anytime.graph, x[None])
            rows.append(row(INIT_SIGNATURE, 1, measure_latency(init_call, runs, warmup)))
            rows.append(row(STEP_SIGNATURE, None, measure_latency(step_call, runs, warmup)))
    return rows


def _bench_image(image, size):
    if image is None:
        return np.random.default_rng(0).integers(0, 256, tuple(size) + (3,), dtype=np.uint8)
    return fit_image(image, size, resize=True)


def format_benchmark(rows):
    """The benchmark rows as an aligned text table."""
    lines = [
        f"{'file':<40} {'precision':<16} {'signature':<10} {'median ms':>10} "
        f"{'p90 ms':>9} {'threads':>7}"
    ]
    for r in rows:
        lines.append(
            f"{os.path.basename(r['file']):<40} {str(r['precision'] or '-'):<16} "
            f"{r['signature']:<10} {r['median_ms']:>10.2f} {r['p90_ms']:>9.2f} "
            f"{r['threads']:>7}"
        )
    return "\n".join(lines)


def check_device_manifest_path(manifest, path):
    """Refuses a `--write-manifest` path outside the manifest's folder (its file names are
    relative to that folder) or equal to the manifest itself (the exporter's record stays).

    Returns:
        The absolute path.
    """
    manifest = as_manifest(manifest)
    path = os.path.abspath(os.fspath(path))
    if not path.lower().endswith(".json"):
        raise RunnerError(f"--write-manifest {path!r} must be a .json file")
    folder = os.path.realpath(manifest["_dir"])
    if os.path.realpath(os.path.dirname(path)) != folder:
        raise RunnerError(
            f"--write-manifest {path!r} must be in the export folder {manifest['_dir']!r} "
            "(the manifest's file names are relative to it)"
        )
    if os.path.exists(path) and os.path.samefile(path, manifest["_path"]):
        raise RunnerError(
            f"--write-manifest {path!r} is the exporter's manifest; write the copy under "
            "another name"
        )
    return path


def device_manifest(manifest, rows, runs, warmup):
    """A copy of `manifest` whose TFLite latencies are the benchmark `rows` of this device.

    TFLite signatures the rows do not cover lose their latency (a budget choice never mixes
    two machines' figures); other formats keep theirs.
    """
    manifest = as_manifest(manifest)
    measured = {(os.path.abspath(r["file"]), r["signature"]): r for r in rows}
    threads = sorted({r["threads"] for r in rows})
    clean = copy.deepcopy({k: v for k, v in manifest.items() if not k.startswith("_")})
    for artifact in clean["artifacts"]:
        if artifact.get("format") != "tflite":
            continue
        path = os.path.abspath(artifact_path(manifest, artifact))
        for sig in artifact.get("signatures", []):
            row = measured.get((path, sig.get("name")))
            sig["latency_ms"] = (
                None
                if row is None
                else {k: row[k] for k in ("median_ms", "p90_ms", "mean_ms", "min_ms", "runs")}
            )
    clean["latency"] = {
        "source": (
            f"the runtime's benchmark on {platform.platform()} ({platform.machine()}), "
            f"{', '.join(map(str, threads))} threads"
        ),
        "formats": ["tflite"],
        "threads": threads[0] if len(threads) == 1 else threads,
        "runs": runs,
        "warmup": warmup,
        "batch": 1,
        "statistic": "median and p90 of wall-clock milliseconds",
    }
    return clean


def write_device_manifest(manifest, rows, path, runs, warmup):
    """Writes `device_manifest(...)` to `path` (atomically, `atomic.write_json`); returns the
    path."""
    path = check_device_manifest_path(manifest, path)
    return write_json(path, device_manifest(manifest, rows, runs, warmup))
