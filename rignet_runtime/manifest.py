"""The export manifest on the device side: reading it, checking its files, choosing a graph.

A manifest (`manifest.json`, written by the exporter) lists every exported file as an artifact
{"file", "format", "kind" ("ui", "stepwise" or "model"), "precision", "size_bytes", "sha256",
"signatures": [{"name", "ui", "latency_ms": {"median_ms", ...}, ...}], ...}; file names are
relative to the manifest's folder and may not leave it. Before a file is used its size and
SHA-256 are checked against the manifest (`verify_artifact`), so a file replaced after the
export (another precision copied over it, a truncated copy) is refused, not run. Manifests
without "sha256" (written before it was recorded) are checked by size alone. An export with a
validation source records each signature's "quality" ({"miou", "pixel_accuracy", "images",
"source"}; step-wise: "quality_by_iterations"), which `select_graph` can choose by.
"""

import hashlib
import json
import math
import os

from .errors import RunnerError
from .wire import MANIFEST_FORMAT, MANIFEST_NAME, MANIFEST_VERSION

HASH_CHUNK = 1 << 20


def load_manifest(path):
    """Reads a `manifest.json` (or the one inside a folder) and checks its format.

    Returns:
        The manifest dict, with "_dir" set to its folder (file paths in it are relative to it)
        and "_path" to the file read.

    Raises:
        RunnerError: the file is missing, is not JSON, is not a version-1 RIGNet manifest, or
            lists a file outside its folder.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, MANIFEST_NAME)
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except FileNotFoundError:
        raise RunnerError(f"manifest {path!r} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RunnerError(f"manifest {path!r} is not JSON: {error}") from None
    except OSError as error:
        raise RunnerError(f"manifest {path!r} cannot be read ({error})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise RunnerError(
            f'{path!r} is not a RIGNet export manifest (expected "format": {MANIFEST_FORMAT!r})'
        )
    if manifest.get("format_version") != MANIFEST_VERSION:
        raise RunnerError(
            f"{path!r} has manifest format_version {manifest.get('format_version')!r}; this "
            f"runner reads version {MANIFEST_VERSION}"
        )
    artifacts = manifest.get("artifacts")
    if not isinstance(artifacts, list) or not all(
        isinstance(a, dict) and isinstance(a.get("file"), str) for a in artifacts
    ):
        raise RunnerError(f'{path!r}: "artifacts" must be a list of {{"file": ...}} entries')
    manifest["_dir"] = os.path.dirname(os.path.abspath(path))
    manifest["_path"] = os.path.abspath(path)
    for artifact in artifacts:
        artifact_path(manifest, artifact)
    faults = manifest_faults(manifest)
    if faults:
        more = f" (and {len(faults) - 1} more)" if len(faults) > 1 else ""
        raise RunnerError(f"manifest {path!r}: {faults[0]}{more}")
    return manifest


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _range_fault(where, name, value, low, high=None, low_open=False):
    """A fault line when `value` is not a finite number in [low, high] ((low, high] with
    `low_open`), else None."""
    if not _number(value):
        return f"{where}: {name} must be a number; found {value!r}"
    if not math.isfinite(value):
        return f"{where}: {name} must be finite; found {value!r}"
    below = value <= low if low_open else value < low
    if below or (high is not None and value > high):
        bounds = f"{'above' if low_open else 'at least'} {low:g}"
        bounds += f" and at most {high:g}" if high is not None else ""
        return f"{where}: {name} must be {bounds}; found {value!r}"
    return None


def _quality_faults(where, quality):
    if quality is None:
        return []
    if not isinstance(quality, dict):
        return [f"{where}: quality must be an object; found {quality!r}"]
    faults = [
        _range_fault(where, f"quality.{key}", quality.get(key), 0.0, 1.0)
        for key in ("miou", "pixel_accuracy")
        if key in quality
    ]
    if "images" in quality:
        images = quality["images"]
        if not isinstance(images, int) or isinstance(images, bool) or images < 1:
            faults.append(f"{where}: quality.images must be a whole number >= 1; found {images!r}")
    return [f for f in faults if f]


def manifest_faults(manifest):
    """Every impossible number in a manifest, one line each: a signature's ui (a whole number
    >= 1), latencies (`latency_ms.*_ms`: finite, > 0 for the median, >= 0 otherwise), quality
    (`miou` and `pixel_accuracy` finite fractions in 0..1, `images` >= 1), per iteration too,
    and artifact sizes (whole numbers >= 0). The runner refuses such a manifest rather than
    choosing or printing by its numbers."""
    faults = []
    for artifact in manifest.get("artifacts", []):
        name = artifact["file"]
        size = artifact.get("size_bytes")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            faults.append(f"{name}: size_bytes must be a whole number >= 0; found {size!r}")
        signatures = artifact.get("signatures", [])
        if not isinstance(signatures, list):
            faults.append(f"{name}: signatures must be a list; found {signatures!r}")
            continue
        for signature in signatures:
            if not isinstance(signature, dict):
                faults.append(f"{name}: a signature must be an object; found {signature!r}")
                continue
            where = f"{name} signature {signature.get('name', '?')}"
            ui = signature.get("ui")
            if ui is not None and (not isinstance(ui, int) or isinstance(ui, bool) or ui < 1):
                faults.append(f"{where}: ui must be a whole number >= 1; found {ui!r}")
            latency = signature.get("latency_ms")
            if latency is not None and not isinstance(latency, dict):
                faults.append(f"{where}: latency_ms must be an object; found {latency!r}")
            elif latency:
                for key, value in latency.items():
                    if key.endswith("_ms"):
                        median = key == "median_ms"
                        fault = _range_fault(where, f"latency_ms.{key}", value, 0.0, None, median)
                        if fault:
                            faults.append(fault)
            faults += _quality_faults(where, signature.get("quality"))
            by_iterations = signature.get("quality_by_iterations")
            if by_iterations is not None:
                if not isinstance(by_iterations, list):
                    faults.append(f"{where}: quality_by_iterations must be a list")
                    continue
                for k, quality in enumerate(by_iterations, start=1):
                    faults += _quality_faults(f"{where} iteration {k}", quality)
    return faults


def as_manifest(manifest):
    """A manifest dict as it is, or the manifest read from a path (see `load_manifest`)."""
    return manifest if isinstance(manifest, dict) else load_manifest(manifest)


def artifact_path(manifest, artifact):
    """The absolute path of an artifact's file, which must lie inside the manifest's folder.

    Raises:
        RunnerError: the name is absolute, has a drive, or climbs out of the folder (`..`).
    """
    name = artifact["file"]
    parts = name.replace("\\", "/").split("/")
    if os.path.isabs(name) or os.path.splitdrive(name)[0] or name.startswith(("/", "\\")):
        raise RunnerError(f"manifest file name {name!r} is absolute; names must be relative")
    if ".." in parts or not name.strip():
        raise RunnerError(f"manifest file name {name!r} leaves the export folder")
    return os.path.join(manifest.get("_dir", "."), *[p for p in parts if p not in ("", ".")])


def sha256_file(path):
    """The SHA-256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def find_artifact(manifest, path):
    """The artifact entry of the manifest whose file is `path`; None when none is."""
    target = os.path.normcase(os.path.abspath(os.fspath(path)))
    for artifact in as_manifest(manifest)["artifacts"]:
        if os.path.normcase(os.path.abspath(artifact_path(manifest, artifact))) == target:
            return artifact
    return None


def verify_artifact(manifest, path):
    """Checks a file the manifest lists against its recorded size and SHA-256.

    A file the manifest does not list, or a folder (a SavedModel), is not checked.

    Returns:
        `path`.

    Raises:
        RunnerError: naming the file, when it is missing or its size or hash differ.
    """
    artifact = find_artifact(manifest, path)
    if artifact is None or os.path.isdir(path):
        return path
    if not os.path.isfile(path):
        raise RunnerError(f"{path!r}, listed in the manifest, does not exist")
    expected = artifact.get("size_bytes")
    size = os.path.getsize(path)
    if expected is not None and size != expected:
        raise RunnerError(
            f"{path!r} is {size} bytes but the manifest records {expected}: the file was "
            "changed or replaced after the export"
        )
    digest = artifact.get("sha256")
    if digest is not None and sha256_file(path) != digest:
        raise RunnerError(
            f"{path!r} does not have the SHA-256 the manifest records: the file was changed "
            "or replaced after the export"
        )
    return path


def manifest_precisions(manifest, fmt="tflite"):
    """The precisions a manifest holds graphs of, for one format, in export order."""
    seen = []
    for artifact in as_manifest(manifest)["artifacts"]:
        if artifact["format"] == fmt and artifact["precision"] not in seen:
            seen.append(artifact["precision"])
    return seen


def latency_source(manifest):
    """Where a manifest's latencies were measured, in words (for the runner's log)."""
    latency = manifest.get("latency") or {}
    if latency.get("source"):
        return latency["source"]
    platform = (manifest.get("machine") or {}).get("platform") or "an unnamed machine"
    threads = latency.get("threads")
    return f"the exporter on {platform}" + (f", {threads} threads" if threads else "")


def _check_quality_flags(quality_floor, min_miou):
    for name, value, high in (("quality_floor", quality_floor, None), ("min_miou", min_miou, 100)):
        if value is None:
            continue
        number = not isinstance(value, bool) and isinstance(value, (int, float))
        if not number or not math.isfinite(value) or value < 0 or (high and value > high):
            bounds = "0..100" if high else ">= 0"
            raise RunnerError(
                f"{name} must be a number of mIoU points, {bounds}; received {value!r}"
            )


def _candidate(manifest, artifact, sig):
    return {
        "file": artifact_path(manifest, artifact),
        "signature": sig["name"],
        "ui": int(sig["ui"]),
        "precision": artifact["precision"],
        "latency_ms": (sig.get("latency_ms") or {}).get("median_ms"),
        "macs": sig.get("macs"),
        "quality": sig.get("quality"),
    }


def _cost(candidate):
    """Cheapest first: measured latency (unmeasured last), then MACs, then the smaller ui."""
    latency = candidate["latency_ms"]
    return (latency is None, latency or 0.0, candidate["macs"] or 0, candidate["ui"])


def select_graph(
    manifest, budget_ms=None, precision=None, fmt="tflite", quality_floor=None, min_miou=None
):
    """Picks a ui graph by a latency budget, a quality floor, or both.

    Budget alone: among every ui signature of the manifest's graphs in format `fmt` (and
    `precision`, if given) whose median latency is at most `budget_ms`, the largest ui wins;
    ties go to the faster graph. With a quality condition (`quality_floor`: within this many
    mIoU points of the best of those graphs; `min_miou`: at least this many points; the
    manifest's `quality`, recorded by an export with a validation source), the cheapest graph
    that meets it wins (lowest median latency, then fewest MACs, then the smaller ui), within
    `budget_ms` if one is given.

    Args:
        manifest: a manifest dict (from `load_manifest`) or a path to one.
        budget_ms: float, the time budget for one image, in milliseconds; or None.
        precision: None (any), or "float32", "float16", "dynamic_int8", "int8",
            "int8_float_gates".
        fmt: "tflite" (default), "onnx" or "saved_model".
        quality_floor: mIoU points (>= 0) below the best graph's that are acceptable; or None.
        min_miou: the lowest acceptable mIoU, in points (0..100); or None.

    Returns:
        {"file": absolute path, "signature": "ui_k", "ui": k, "precision": str,
        "latency_ms": float or None, "macs": int or None, "quality": the manifest's quality
        entry or None, "best_miou": the best graph's mIoU (with a quality condition)}.

    Raises:
        RunnerError: no graph of that precision; a quality condition on a manifest without
            quality figures; nothing meets the conditions (naming the closest graph).
    """
    manifest = as_manifest(manifest)
    if budget_ms is not None and (
        isinstance(budget_ms, bool) or not isinstance(budget_ms, (int, float)) or budget_ms <= 0
    ):
        raise RunnerError(f"budget_ms must be a positive number; received {budget_ms!r}")
    _check_quality_flags(quality_floor, min_miou)
    by_quality = quality_floor is not None or min_miou is not None
    if budget_ms is None and not by_quality:
        raise RunnerError("select_graph needs budget_ms, quality_floor or min_miou")
    candidates = []
    for artifact in manifest["artifacts"]:
        if artifact["format"] != fmt or artifact.get("kind") != "ui":
            continue
        if precision is not None and artifact["precision"] != precision:
            continue
        for sig in artifact["signatures"]:
            if sig.get("ui") is not None and sig["name"].startswith("ui_"):
                candidates.append(_candidate(manifest, artifact, sig))
    what = f"{fmt} ui graph" + (f" at precision {precision!r}" if precision else "")
    if budget_ms is not None:
        candidates = [c for c in candidates if c["latency_ms"] is not None]
    if not candidates:
        measured = " with a measured latency" if budget_ms is not None else ""
        raise RunnerError(
            f"the manifest holds no {what}{measured}; precisions available: "
            f"{manifest_precisions(manifest, fmt)}"
        )
    if not by_quality:
        fitting = [c for c in candidates if c["latency_ms"] <= budget_ms]
        if not fitting:
            fastest = min(candidates, key=lambda c: c["latency_ms"])
            raise RunnerError(
                f"no graph fits a budget of {budget_ms} ms: the fastest, {fastest['signature']} "
                f"in {os.path.basename(fastest['file'])}, takes {fastest['latency_ms']:.1f} ms"
            )
        return max(fitting, key=lambda c: (c["ui"], -c["latency_ms"]))
    unscored = [c for c in candidates if (c["quality"] or {}).get("miou") is None]
    if unscored:
        first = unscored[0]
        raise RunnerError(
            f"the manifest records no quality (mIoU) for {first['signature']} in "
            f"{os.path.basename(first['file'])}: a quality floor or minimum mIoU needs an "
            "export with a validation source (export_model.py --validation DIR)"
        )
    best = max(c["quality"]["miou"] for c in candidates)
    slack = 1e-9  # the figures are rounded to 6 digits
    acceptable = [
        c
        for c in candidates
        if (quality_floor is None or c["quality"]["miou"] >= best - quality_floor / 100 - slack)
        and (min_miou is None or c["quality"]["miou"] >= min_miou / 100 - slack)
    ]
    for c in candidates:
        c["best_miou"] = best
    if not acceptable:
        raise RunnerError(
            f"no {what} reaches an mIoU of {min_miou:g}: the best has {100 * best:.2f}"
        )
    if budget_ms is None:
        return min(acceptable, key=_cost)
    fitting = [c for c in acceptable if c["latency_ms"] <= budget_ms]
    if not fitting:
        fastest = min(acceptable, key=_cost)
        raise RunnerError(
            f"no graph of the required quality fits a budget of {budget_ms} ms: the fastest "
            f"that has it, {fastest['signature']} in {os.path.basename(fastest['file'])} "
            f"(mIoU {100 * fastest['quality']['miou']:.2f}), takes {fastest['latency_ms']:.1f} ms"
        )
    return min(fitting, key=_cost)


def describe_quality(choice):
    """The expected quality of a chosen graph, in words ("" when the manifest has none)."""
    quality = choice.get("quality") or {}
    if quality.get("miou") is None:
        return ""
    return (
        f"expected mIoU {100 * quality['miou']:.2f} (pixel accuracy "
        f"{100 * quality['pixel_accuracy']:.2f}) on {quality['images']} validation images "
        f"({quality['source']})"
    )


def select_ui(manifest, ui=None, precision=None):
    """The TFLite file and signature that run a given ui (None: the largest the manifest holds).

    The file holding the most ui signatures (the all-ui file) is preferred over a per-ui file.

    Returns:
        {"file": absolute path, "signature": "ui_k", "ui": k, "precision": str,
        "latency_ms": float or None, "macs": int or None, "quality": dict or None}.
    """
    manifest = as_manifest(manifest)
    files = [
        a
        for a in manifest["artifacts"]
        if a["format"] == "tflite"
        and a.get("kind") == "ui"
        and (precision is None or a["precision"] == precision)
    ]
    if not files:
        raise RunnerError(
            "the manifest holds no TFLite ui graph"
            + (f" at precision {precision!r}" if precision else "")
            + f"; precisions available: {manifest_precisions(manifest)}"
        )
    held = sorted({s["ui"] for a in files for s in a["signatures"] if s.get("ui") is not None})
    wanted = max(held) if ui is None else ui
    if wanted not in held:
        raise RunnerError(
            f"the manifest's TFLite graphs hold ui {held}; ui {wanted!r} is not among them"
        )
    files.sort(key=lambda a: -len(a["signatures"]))
    for artifact in files:
        for sig in artifact["signatures"]:
            if sig.get("ui") == wanted:
                return _candidate(manifest, artifact, sig)
    raise AssertionError("unreachable")


def find_stepwise(manifest, precision=None):
    """The absolute path of the manifest's step-wise TFLite graph (of `precision`, if given)."""
    manifest = as_manifest(manifest)
    for artifact in manifest["artifacts"]:
        if artifact["format"] == "tflite" and artifact.get("kind") == "stepwise":
            if precision is None or artifact["precision"] == precision:
                return artifact_path(manifest, artifact)
    raise RunnerError(
        "the manifest holds no step-wise TFLite graph"
        + (f" at precision {precision!r}" if precision else "")
        + " (export a parallel, multi_range or network-wide RIGNet at a fixed input size)"
    )
