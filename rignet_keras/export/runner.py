"""The on-device runner for exported RIGNet TFLite graphs: NumPy, Pillow and `ai_edge_litert` only.

This module must never import TensorFlow or Keras, not even indirectly: a device has neither.
It has no package-relative imports either, so `export/run_tflite.py` loads it by file path
without running `rignet_keras/__init__.py` (which imports Keras). Inside the package it is also
importable as `rignet_keras.export.runner`.

What it runs (written by `rignet_keras.export.export_model`):
    * a "ui" graph: a `.tflite` file whose signatures `ui_1`, `ui_2`, ... each take uint8 RGB
      images `images` (1, H, W, 3) and return `class_map` int32 (1, H, W) and `probabilities`
      float32 (1, H, W, C); normalisation is inside the graph;
    * a step-wise graph: signatures `init` (images -> prediction + recurrent state `state_i`) and
      `step` (state -> next prediction + next state), for anytime inference: iterate until a
      deadline, stop early when the class map stops changing, never recompute a finished
      iteration;
    * a `manifest.json` describing every exported file (sizes, latencies, parity figures), from
      which `select_graph` picks the largest ui that fits a latency budget.

Command line (see `main`): `python export/run_tflite.py IMAGE_OR_FOLDER --manifest manifest.json
--budget-ms 50 --output-dir masks/`.

With `weight_cache` (`--weight-cache DIR`) the graphs run in `ai_edge_litert`'s `CompiledModel`
with an XNNPACK weight cache, through `litert_cache.py` beside this file (loaded by file path
too, so deploy the two together): later processes start faster.
"""

import argparse
import dataclasses
import importlib
import importlib.util
import json
import os
import sys
import time

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_INPUT = "images"
CLASS_MAP = "class_map"
PROBABILITIES = "probabilities"
UI_PREFIX = "ui_"
INIT_SIGNATURE = "init"
STEP_SIGNATURE = "step"
STATE_PREFIX = "state_"
MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "rignet-export-manifest"
MANIFEST_VERSION = 1
DEFAULT_THREADS = 2
# An anytime run with neither a deadline nor max_iterations stops here even if never stable.
MAX_ANYTIME_ITERATIONS = 32
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")


class RunnerError(ValueError):
    """A user-facing error: bad model, bad image, bad option. The message names the culprit."""


# ------------------------------------------------------------------------------------------------
# Small helpers shared with the exporter (they are pure Python, so both sides use one copy).


def voc_palette(num_colors=256):
    """The PASCAL VOC palette as uint8 (num_colors, 3); index 255 is (224, 224, 192)."""
    palette = np.zeros((num_colors, 3), np.uint8)
    for i in range(num_colors):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette[i] = (r, g, b)
    return palette


def measure_latency(call, runs=10, warmup=1):
    """Times `call()` `runs` times after `warmup` untimed calls.

    Returns:
        {"median_ms", "p90_ms", "mean_ms", "min_ms", "runs"}: wall-clock milliseconds.
    """
    if runs < 1:
        raise ValueError(f"runs must be >= 1; received {runs!r}")
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000.0)
    times = np.asarray(times)
    return {
        "median_ms": round(float(np.median(times)), 3),
        "p90_ms": round(float(np.percentile(times, 90)), 3),
        "mean_ms": round(float(times.mean()), 3),
        "min_ms": round(float(times.min()), 3),
        "runs": int(runs),
    }


def ui_signature(ui):
    """The signature name of the graph unrolled `ui` times: "ui_3"."""
    return f"{UI_PREFIX}{int(ui)}"


def signature_ui(name):
    """The ui of a signature name "ui_3" -> 3; None for any other name."""
    if name.startswith(UI_PREFIX) and name[len(UI_PREFIX) :].isdigit():
        return int(name[len(UI_PREFIX) :])
    return None


# ------------------------------------------------------------------------------------------------
# The manifest.


def load_manifest(path):
    """Reads a `manifest.json` (or the one inside a folder) and checks its format.

    Returns:
        The manifest dict, with "_dir" set to its folder (file paths in it are relative to it).
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
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise RunnerError(
            f'{path!r} is not a RIGNet export manifest (expected "format": {MANIFEST_FORMAT!r})'
        )
    if manifest.get("format_version") != MANIFEST_VERSION:
        raise RunnerError(
            f"{path!r} has manifest format_version {manifest.get('format_version')!r}; this "
            f"runner reads version {MANIFEST_VERSION}"
        )
    manifest["_dir"] = os.path.dirname(os.path.abspath(path))
    return manifest


def _as_manifest(manifest):
    return manifest if isinstance(manifest, dict) else load_manifest(manifest)


def _artifact_path(manifest, artifact):
    return os.path.join(manifest.get("_dir", "."), artifact["file"])


def manifest_precisions(manifest, fmt="tflite"):
    """The precisions a manifest holds graphs of, for one format, in export order."""
    seen = []
    for artifact in _as_manifest(manifest)["artifacts"]:
        if artifact["format"] == fmt and artifact["precision"] not in seen:
            seen.append(artifact["precision"])
    return seen


def select_graph(manifest, budget_ms, precision=None, fmt="tflite"):
    """Picks the largest ui whose measured latency fits a budget.

    Among every ui signature of the manifest's graphs in format `fmt` (and `precision`, if
    given) whose median latency is at most `budget_ms`, the largest ui wins; ties go to the
    faster graph.

    Args:
        manifest: a manifest dict (from `load_manifest`) or a path to one.
        budget_ms: float, the time budget for one image, in milliseconds.
        precision: None (any), or "float32", "float16", "dynamic_int8", "int8",
            "int8_float_gates".
        fmt: "tflite" (default), "onnx" or "saved_model".

    Returns:
        {"file": absolute path, "signature": "ui_k", "ui": k, "precision": str,
        "latency_ms": float}.

    Raises:
        RunnerError: no graph of that precision, or none fits the budget.
    """
    manifest = _as_manifest(manifest)
    if not isinstance(budget_ms, (int, float)) or budget_ms <= 0:
        raise RunnerError(f"budget_ms must be a positive number; received {budget_ms!r}")
    candidates = []
    for artifact in manifest["artifacts"]:
        if artifact["format"] != fmt or artifact.get("kind") != "ui":
            continue
        if precision is not None and artifact["precision"] != precision:
            continue
        for sig in artifact["signatures"]:
            latency = (sig.get("latency_ms") or {}).get("median_ms")
            if sig.get("ui") is None or latency is None:
                continue
            candidates.append(
                {
                    "file": _artifact_path(manifest, artifact),
                    "signature": sig["name"],
                    "ui": int(sig["ui"]),
                    "precision": artifact["precision"],
                    "latency_ms": float(latency),
                }
            )
    if not candidates:
        available = manifest_precisions(manifest, fmt)
        raise RunnerError(
            f"the manifest holds no {fmt} ui graph with a measured latency"
            + (f" at precision {precision!r}" if precision else "")
            + f"; precisions available: {available}"
        )
    fitting = [c for c in candidates if c["latency_ms"] <= budget_ms]
    if not fitting:
        fastest = min(candidates, key=lambda c: c["latency_ms"])
        raise RunnerError(
            f"no graph fits a budget of {budget_ms} ms: the fastest, {fastest['signature']} "
            f"in {os.path.basename(fastest['file'])}, takes {fastest['latency_ms']:.1f} ms"
        )
    return max(fitting, key=lambda c: (c["ui"], -c["latency_ms"]))


def find_stepwise(manifest, precision=None):
    """The absolute path of the manifest's step-wise TFLite graph (of `precision`, if given)."""
    manifest = _as_manifest(manifest)
    for artifact in manifest["artifacts"]:
        if artifact["format"] == "tflite" and artifact.get("kind") == "stepwise":
            if precision is None or artifact["precision"] == precision:
                return _artifact_path(manifest, artifact)
    raise RunnerError(
        "the manifest holds no step-wise TFLite graph"
        + (f" at precision {precision!r}" if precision else "")
        + " (export a parallel, multi_range or network-wide RIGNet at a fixed input size)"
    )


# ------------------------------------------------------------------------------------------------
# Images and masks.


def list_images(path):
    """The image files to process: `path` itself, or the image files of a folder (sorted)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        files = sorted(
            os.path.join(path, name)
            for name in os.listdir(path)
            if name.lower().endswith(IMAGE_SUFFIXES) and not name.startswith(".")
        )
        if not files:
            raise RunnerError(f"folder {path!r} holds no image ({', '.join(IMAGE_SUFFIXES)})")
        return files
    if not os.path.exists(path):
        raise RunnerError(f"input {path!r} does not exist")
    return [path]


def load_image(path):
    """Reads an image file as uint8 RGB (H, W, 3); `RunnerError` naming the file otherwise."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"), np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise RunnerError(f"{path!r} is not an image Pillow can read ({error})") from None


def fit_image(image, size, resize=False, name="image", model_name="the model"):
    """Checks an image (H, W, 3) against a fixed graph size (h, w), resizing it if allowed.

    Returns:
        uint8 (h, w, 3).
    """
    height, width = image.shape[:2]
    if (height, width) == tuple(size):
        return image
    if not resize:
        raise RunnerError(
            f"{name} is {width}x{height} (width x height) but {model_name} takes "
            f"{size[1]}x{size[0]} images (a fixed-size graph); resize it, or pass --resize"
        )
    resized = Image.fromarray(image).resize((size[1], size[0]), Image.BILINEAR)
    return np.asarray(resized, np.uint8)


def resize_mask(class_map, size):
    """Resizes a class map (h, w) to (H, W) with nearest neighbours."""
    if tuple(class_map.shape) == tuple(size):
        return class_map
    mask = Image.fromarray(class_map.astype(np.uint8), mode="L")
    return np.asarray(mask.resize((size[1], size[0]), Image.NEAREST))


def write_mask(path, class_map):
    """Writes a class map (H, W) as a palette PNG with the PASCAL VOC palette."""
    class_map = np.asarray(class_map)
    if class_map.min(initial=0) < 0 or class_map.max(initial=0) > 255:
        raise RunnerError(f"class ids must be in 0..255 for a palette PNG; writing {path!r}")
    mask = Image.fromarray(class_map.astype(np.uint8), mode="P")
    mask.putpalette(voc_palette().reshape(-1).tolist())
    mask.save(path)


def overlay(image, class_map, alpha=0.5):
    """Blends the VOC colours of a class map (H, W) over an RGB image (H, W, 3): uint8 (H, W, 3)."""
    colours = voc_palette()[np.asarray(class_map).astype(np.uint8)].astype(np.float32)
    blended = (1.0 - alpha) * image.astype(np.float32) + alpha * colours
    return np.clip(blended + 0.5, 0, 255).astype(np.uint8)


def write_overlay(path, image, class_map, alpha=0.5):
    """Writes `overlay(image, class_map, alpha)` as an RGB image file."""
    Image.fromarray(overlay(image, class_map, alpha)).save(path)


# ------------------------------------------------------------------------------------------------
# Graphs.


LITERT_CACHE_MODULE = "rignet_tflite_litert_cache"


def _litert_cache():
    """The `litert_cache` module beside this file: imported from the package when this module is
    `rignet_keras.export.runner`, else loaded by file path (like `export/run_tflite.py` loads
    this one), so that neither imports Keras."""
    if __package__:
        return importlib.import_module(f"{__package__}.litert_cache")
    if LITERT_CACHE_MODULE in sys.modules:
        return sys.modules[LITERT_CACHE_MODULE]
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "litert_cache.py")
    if not os.path.isfile(path):
        raise RunnerError(f"a weight cache needs {path!r} (copy it beside runner.py)")
    spec = importlib.util.spec_from_file_location(LITERT_CACHE_MODULE, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[LITERT_CACHE_MODULE] = module
    spec.loader.exec_module(module)
    return module


def make_interpreter(model_path, threads=DEFAULT_THREADS, weight_cache=None):
    """An `ai_edge_litert` interpreter over a `.tflite` file, with `threads` CPU threads.

    Args:
        model_path: a `.tflite` file.
        threads: CPU threads.
        weight_cache: None (default): the classic `Interpreter`. A folder (created if missing):
            a `litert_cache.CachedInterpreter`, a `CompiledModel` that reads the file's XNNPACK
            weight cache from the folder, or writes it there on the first run, in the part of
            the Interpreter API the runner uses (same outputs, faster later cold starts; a
            graph with quantized activations loads without a cache, see `litert_cache`).
    """
    model_path = os.fspath(model_path)
    if not os.path.isfile(model_path):
        raise RunnerError(f"model {model_path!r} does not exist")
    cache = _litert_cache() if weight_cache else None
    try:
        if cache is not None:
            return cache.CachedInterpreter(model_path, os.fspath(weight_cache), threads)
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter(model_path=model_path, num_threads=int(threads))
    except (ValueError, RuntimeError) as error:
        raise RunnerError(
            f"{model_path!r} is not a TFLite model this runtime loads ({error})"
        ) from None


def ui_signatures(interpreter):
    """{ui: signature name} of an interpreter's ui signatures."""
    found = {}
    for name in interpreter.get_signature_list():
        ui = signature_ui(name)
        if ui is not None:
            found[ui] = name
    return dict(sorted(found.items()))


class Segmenter:
    """Runs one ui signature of a `.tflite` file on single images.

    Args:
        model_path: path of a `.tflite` file written by the exporter.
        ui: the ui to run; None: the largest in the file.
        signature: a signature name instead of `ui` (e.g. "ui_2").
        threads: CPU threads. Default 2.
        interpreter: an existing interpreter over `model_path` to reuse.
        weight_cache: a folder for the XNNPACK weight cache (see `make_interpreter`); None: none.

    Call: `segmenter(image)` with uint8 RGB (H, W, 3) at the graph's size ->
    (class_map int32 (H, W), probabilities float32 (H, W, C)).
    """

    def __init__(
        self,
        model_path,
        ui=None,
        signature=None,
        threads=DEFAULT_THREADS,
        interpreter=None,
        weight_cache=None,
    ):
        self.model_path = os.fspath(model_path)
        self.interpreter = interpreter or make_interpreter(self.model_path, threads, weight_cache)
        available = ui_signatures(self.interpreter)
        if not available:
            raise RunnerError(
                f"{self.model_path!r} holds no ui signature (ui_1, ui_2, ...); its signatures: "
                f"{sorted(self.interpreter.get_signature_list())}"
            )
        if signature is None:
            if ui is None:
                ui = max(available)
            if ui not in available:
                raise RunnerError(
                    f"{self.model_path!r} holds ui {sorted(available)} "
                    f"({', '.join(available.values())}); ui {ui!r} is not among them"
                )
            signature = available[ui]
        elif signature not in self.interpreter.get_signature_list():
            raise RunnerError(
                f"{self.model_path!r} has no signature {signature!r}; it has "
                f"{sorted(self.interpreter.get_signature_list())}"
            )
        self.signature = signature
        self.ui = signature_ui(signature)
        self.runner = self.interpreter.get_signature_runner(signature)
        details = self.runner.get_input_details()
        if IMAGE_INPUT not in details:
            raise RunnerError(
                f"signature {signature!r} of {self.model_path!r} has no {IMAGE_INPUT!r} input"
            )
        shape = details[IMAGE_INPUT]["shape_signature"]
        self.input_size = (int(shape[1]), int(shape[2]))
        if min(self.input_size) < 1:
            raise RunnerError(
                f"{self.model_path!r} has a dynamic input size; the runner needs a fixed-size graph"
            )

    def __call__(self, image):
        out = self.runner(**{IMAGE_INPUT: np.ascontiguousarray(image[None])})
        return out[CLASS_MAP][0], out[PROBABILITIES][0]


@dataclasses.dataclass
class AnytimeResult:
    """What an anytime run produced.

    Attributes:
        class_map: int32 (H, W), the last prediction.
        probabilities: float32 (H, W, C).
        iterations: how many iterations ran (1 = the feed-forward pass).
        elapsed_ms: wall time from the start of `init` to the end of the last step.
        stop_reason: "deadline" (the next step would not have fitted), "stable" (the class map
            stopped changing), or "max_iterations".
        step_ms: the duration of each iteration, `init` first.
        changed: the share of pixels whose label changed at each step.
    """

    class_map: np.ndarray
    probabilities: np.ndarray
    iterations: int
    elapsed_ms: float
    stop_reason: str
    step_ms: list
    changed: list


class AnytimeSegmenter:
    """Runs the step-wise graph (signatures `init` and `step`) iteration after iteration.

    Iteration 1 is `init`; each further iteration is one `step`, fed the state the last one
    returned, so no iteration is ever recomputed. `run` stops before a step that would end past
    the deadline (its cost is estimated by the last step's duration), when the class map stops
    changing (the share of changed pixels is at most `stable_tolerance`), or at
    `max_iterations` (`MAX_ANYTIME_ITERATIONS` when None).

    Args:
        model_path: a `.tflite` file with `init` and `step` signatures.
        threads: CPU threads. Default 2.
        interpreter: an existing interpreter over `model_path` to reuse.
        weight_cache: a folder for the XNNPACK weight cache (see `make_interpreter`); None: none.
    """

    def __init__(self, model_path, threads=DEFAULT_THREADS, interpreter=None, weight_cache=None):
        self.model_path = os.fspath(model_path)
        self.interpreter = interpreter or make_interpreter(self.model_path, threads, weight_cache)
        signatures = self.interpreter.get_signature_list()
        if INIT_SIGNATURE not in signatures or STEP_SIGNATURE not in signatures:
            raise RunnerError(
                f"{self.model_path!r} holds no step-wise signatures ({INIT_SIGNATURE!r} and "
                f"{STEP_SIGNATURE!r}); its signatures: {sorted(signatures)}"
            )
        self.init_runner = self.interpreter.get_signature_runner(INIT_SIGNATURE)
        self.step_runner = self.interpreter.get_signature_runner(STEP_SIGNATURE)
        self.state_inputs = list(self.step_runner.get_input_details())
        shape = self.init_runner.get_input_details()[IMAGE_INPUT]["shape_signature"]
        self.input_size = (int(shape[1]), int(shape[2]))

    def init(self, image):
        """Iteration 1: returns (outputs dict, state dict)."""
        out = self.init_runner(**{IMAGE_INPUT: np.ascontiguousarray(image[None])})
        return out, {name: np.array(out[name]) for name in self.state_inputs}

    def step(self, state):
        """One more iteration from `state` (updated in place and returned with the outputs)."""
        out = self.step_runner(**state)
        for name in self.state_inputs:
            if name in out:
                state[name] = np.array(out[name])
        return out, state

    def run(
        self,
        image,
        deadline_ms=None,
        max_iterations=None,
        stop_when_stable=True,
        stable_tolerance=0.0,
    ):
        """Anytime inference on one image (H, W, 3) uint8; returns an `AnytimeResult`."""
        if deadline_ms is not None and deadline_ms <= 0:
            raise RunnerError(f"deadline_ms must be positive; received {deadline_ms!r}")
        if max_iterations is not None and max_iterations < 1:
            raise RunnerError(f"max_iterations must be >= 1; received {max_iterations!r}")
        start = time.perf_counter()
        out, state = self.init(image)
        step_ms = [(time.perf_counter() - start) * 1000.0]
        class_map, probabilities = out[CLASS_MAP][0], out[PROBABILITIES][0]
        changed = []
        limit = MAX_ANYTIME_ITERATIONS if max_iterations is None else max_iterations
        reason = "max_iterations"
        while len(step_ms) < limit:
            elapsed = (time.perf_counter() - start) * 1000.0
            if deadline_ms is not None and elapsed + step_ms[-1] > deadline_ms:
                reason = "deadline"
                break
            step_start = time.perf_counter()
            out, state = self.step(state)
            step_ms.append((time.perf_counter() - step_start) * 1000.0)
            new_map = out[CLASS_MAP][0]
            share = float(np.mean(new_map != class_map))
            changed.append(share)
            class_map, probabilities = new_map, out[PROBABILITIES][0]
            if stop_when_stable and share <= stable_tolerance:
                reason = "stable"
                break
        return AnytimeResult(
            class_map=class_map,
            probabilities=probabilities,
            iterations=len(step_ms),
            elapsed_ms=(time.perf_counter() - start) * 1000.0,
            stop_reason=reason,
            step_ms=[round(t, 3) for t in step_ms],
            changed=changed,
        )


# ------------------------------------------------------------------------------------------------
# Running on files, and benchmarking.


def resolve_model(
    model=None, manifest=None, ui=None, budget_ms=None, deadline_ms=None, precision=None
):
    """Works out which file and signature to run from the runner's options.

    Returns:
        {"file": path, "mode": "ui" or "stepwise", "ui": int or None, "signature": name or None,
        "latency_ms": float or None}.
    """
    if (model is None) == (manifest is None):
        raise RunnerError("give exactly one of a .tflite model and a manifest")
    chosen = [
        name
        for name, value in (
            ("--ui", ui),
            ("--budget-ms", budget_ms),
            ("--deadline-ms", deadline_ms),
        )
        if value is not None
    ]
    if len(chosen) > 1:
        raise RunnerError(f"choose one of --ui, --budget-ms, --deadline-ms; received {chosen}")
    if deadline_ms is not None:
        path = find_stepwise(manifest, precision) if manifest is not None else model
        return {"file": path, "mode": "stepwise", "ui": None, "signature": None, "latency_ms": None}
    if manifest is not None:
        manifest = _as_manifest(manifest)
        if budget_ms is not None:
            choice = select_graph(manifest, budget_ms, precision)
            return {
                "file": choice["file"],
                "mode": "ui",
                "ui": choice["ui"],
                "signature": choice["signature"],
                "latency_ms": choice["latency_ms"],
            }
        # --ui (or the largest): prefer the all-ui file, then a per-ui file of that ui.
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
        held = sorted({s["ui"] for a in files for s in a["signatures"]})
        wanted = max(held) if ui is None else ui
        if wanted not in held:
            raise RunnerError(
                f"the manifest's TFLite graphs hold ui {held}; ui {wanted!r} is not among them"
            )
        files.sort(key=lambda a: -len(a["signatures"]))
        for artifact in files:
            for sig in artifact["signatures"]:
                if sig["ui"] == wanted:
                    return {
                        "file": _artifact_path(manifest, artifact),
                        "mode": "ui",
                        "ui": wanted,
                        "signature": sig["name"],
                        "latency_ms": (sig.get("latency_ms") or {}).get("median_ms"),
                    }
    if budget_ms is not None:
        return {"file": model, "mode": "budget", "ui": None, "signature": None, "latency_ms": None}
    return {"file": model, "mode": "ui", "ui": ui, "signature": None, "latency_ms": None}


def choose_by_measurement(
    model_path, budget_ms, threads=DEFAULT_THREADS, runs=3, weight_cache=None
):
    """Without a manifest: times every ui signature of a file and picks the largest that fits."""
    interpreter = make_interpreter(model_path, threads, weight_cache)
    rows = []
    for ui in ui_signatures(interpreter):
        segmenter = Segmenter(model_path, ui=ui, interpreter=interpreter)
        image = np.zeros(segmenter.input_size + (3,), np.uint8)
        rows.append((ui, measure_latency(lambda s=segmenter, x=image: s(x), runs=runs)))
    fitting = [ui for ui, lat in rows if lat["median_ms"] <= budget_ms]
    if not fitting:
        measured = ", ".join(f"ui {u}: {lat['median_ms']:.1f} ms" for u, lat in rows)
        raise RunnerError(
            f"no ui of {os.fspath(model_path)!r} fits a budget of {budget_ms} ms "
            f"(measured: {measured})"
        )
    return max(fitting), interpreter


def run(
    inputs,
    output_dir,
    model=None,
    manifest=None,
    ui=None,
    budget_ms=None,
    deadline_ms=None,
    precision=None,
    threads=DEFAULT_THREADS,
    resize=False,
    write_overlays=True,
    alpha=0.5,
    max_iterations=None,
    stop_when_stable=True,
    stable_tolerance=0.0,
    log=None,
    weight_cache=None,
):
    """Segments an image or a folder of images and writes palette masks (and overlays).

    Args:
        inputs: an image file or a folder of images.
        output_dir: where `<name>.png` (palette mask) and `<name>_overlay.png` go.
        model / manifest: a `.tflite` file, or a `manifest.json` (exactly one).
        ui: the ui to run. budget_ms: pick the largest ui that fits (from the manifest's
            latencies, or measured here for a bare file). deadline_ms: run the step-wise graph
            until the deadline. At most one of the three; none: the largest ui.
        precision: restrict a manifest's choice to one precision.
        threads: CPU threads. resize: resize images to the graph's size (else a size mismatch
            is an error); masks are resized back.
        write_overlays, alpha: write colour overlays blended with `alpha`.
        max_iterations, stop_when_stable, stable_tolerance: see `AnytimeSegmenter.run`.
        log: a callable taking a line of text (e.g. `print`), or None.
        weight_cache: a folder for the XNNPACK weight cache (see `make_interpreter`); None: none.

    Returns:
        A list of dicts, one per image: {"image", "mask", "overlay", "ui" or "iterations",
        "milliseconds", "stop_reason"}.
    """
    files = list_images(inputs)
    if manifest is not None:
        manifest = _as_manifest(manifest)
    plan = resolve_model(model, manifest, ui, budget_ms, deadline_ms, precision)
    interpreter = None
    if plan["mode"] == "budget":
        plan["ui"], interpreter = choose_by_measurement(
            plan["file"], budget_ms, threads, weight_cache=weight_cache
        )
        plan["mode"] = "ui"
    if plan["mode"] == "stepwise":
        graph = AnytimeSegmenter(plan["file"], threads, weight_cache=weight_cache)
        if max_iterations is None and manifest is not None:
            max_iterations = (manifest.get("stepwise") or {}).get("max_iterations")
    else:
        graph = Segmenter(
            plan["file"],
            ui=plan["ui"],
            signature=plan["signature"],
            threads=threads,
            interpreter=interpreter,
            weight_cache=weight_cache,
        )
    os.makedirs(output_dir, exist_ok=True)
    name = os.path.basename(plan["file"])
    results = []
    for path in files:
        image = load_image(path)
        fitted = fit_image(image, graph.input_size, resize, name=repr(path), model_name=repr(name))
        start = time.perf_counter()
        record = {"image": path}
        if plan["mode"] == "stepwise":
            result = graph.run(
                fitted, deadline_ms, max_iterations, stop_when_stable, stable_tolerance
            )
            class_map = result.class_map
            record.update(
                iterations=result.iterations, stop_reason=result.stop_reason, step_ms=result.step_ms
            )
        else:
            class_map, _ = graph(fitted)
            record.update(ui=graph.ui)
        record["milliseconds"] = round((time.perf_counter() - start) * 1000.0, 3)
        class_map = resize_mask(class_map, image.shape[:2])
        stem = os.path.splitext(os.path.basename(path))[0]
        record["mask"] = os.path.join(output_dir, f"{stem}.png")
        write_mask(record["mask"], class_map)
        if write_overlays:
            record["overlay"] = os.path.join(output_dir, f"{stem}_overlay.png")
            write_overlay(record["overlay"], image, class_map, alpha)
        if log is not None:
            detail = (
                f"{record['iterations']} iterations ({record['stop_reason']})"
                if plan["mode"] == "stepwise"
                else f"ui {record['ui']}"
            )
            log(f"{path}: {detail}, {record['milliseconds']:.1f} ms -> {record['mask']}")
        results.append(record)
    return results


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
            of `precision`).
        threads, runs, warmup: the timing set-up.
        image: uint8 (H, W, 3) at the graphs' size, or None for a fixed random image.
        weight_cache: a folder for the XNNPACK weight cache (see `make_interpreter`): the
            graphs then run in `CompiledModel`; None: the classic Interpreter.

    Returns:
        A list of dicts {"file", "precision", "signature", "ui", "median_ms", "p90_ms", "runs",
        "threads"}.
    """
    if (model is None) == (manifest is None):
        raise RunnerError("give exactly one of a .tflite model and a manifest")
    if manifest is not None:
        manifest = _as_manifest(manifest)
        files = [
            (_artifact_path(manifest, a), a["precision"])
            for a in manifest["artifacts"]
            if a["format"] == "tflite" and (precision is None or a["precision"] == precision)
        ]
        if not files:
            raise RunnerError(
                f"the manifest holds no TFLite graph at precision {precision!r}; "
                f"available: {manifest_precisions(manifest)}"
            )
    else:
        files = [(os.fspath(model), None)]
    rows = []
    for path, file_precision in files:
        interpreter = make_interpreter(path, threads, weight_cache)
        signatures = interpreter.get_signature_list()
        for ui in ui_signatures(interpreter):
            segmenter = Segmenter(path, ui=ui, interpreter=interpreter)
            x = _bench_image(image, segmenter.input_size)
            lat = measure_latency(lambda s=segmenter, x=x: s(x), runs, warmup)
            rows.append(
                dict(
                    file=path,
                    precision=file_precision,
                    signature=segmenter.signature,
                    ui=ui,
                    threads=threads,
                    **lat,
                )
            )
        if INIT_SIGNATURE in signatures and STEP_SIGNATURE in signatures:
            anytime = AnytimeSegmenter(path, interpreter=interpreter)
            x = _bench_image(image, anytime.input_size)
            _, state = anytime.init(x)
            lat = measure_latency(lambda a=anytime, x=x: a.init(x), runs, warmup)
            rows.append(
                dict(
                    file=path,
                    precision=file_precision,
                    signature=INIT_SIGNATURE,
                    ui=1,
                    threads=threads,
                    **lat,
                )
            )
            lat = measure_latency(lambda a=anytime, s=state: a.step_runner(**s), runs, warmup)
            rows.append(
                dict(
                    file=path,
                    precision=file_precision,
                    signature=STEP_SIGNATURE,
                    ui=None,
                    threads=threads,
                    **lat,
                )
            )
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


def build_parser():
    """The runner's command line."""
    parser = argparse.ArgumentParser(
        prog="run_tflite.py",
        description="Run an exported RIGNet TFLite graph on images (NumPy, Pillow and "
        "ai_edge_litert only): palette PNG masks and colour overlays, or a latency benchmark.",
    )
    parser.add_argument("inputs", nargs="?", help="an image file or a folder of images")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="a .tflite file written by the exporter")
    source.add_argument("--manifest", help="a manifest.json (or its folder)")
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--ui", type=int, help="the number of iterations to run")
    choice.add_argument(
        "--budget-ms",
        type=float,
        help="pick the largest ui whose measured latency fits this budget",
    )
    choice.add_argument(
        "--deadline-ms",
        type=float,
        help="run the step-wise graph iteration after iteration until this "
        "deadline (stops early when the class map stops changing)",
    )
    parser.add_argument("--precision", help="with --manifest: only graphs of this precision")
    parser.add_argument("--output-dir", default="rignet_masks", help="where masks go")
    parser.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_THREADS,
        help=f"CPU threads (default {DEFAULT_THREADS})",
    )
    parser.add_argument(
        "--resize",
        action="store_true",
        help="resize images to the graph's fixed size (masks are resized back)",
    )
    parser.add_argument("--no-overlay", action="store_true", help="write masks only")
    parser.add_argument("--alpha", type=float, default=0.5, help="overlay opacity")
    parser.add_argument(
        "--max-iterations", type=int, help="with --deadline-ms: at most this many iterations"
    )
    parser.add_argument(
        "--no-early-stop",
        action="store_true",
        help="with --deadline-ms: do not stop when the class map is stable",
    )
    parser.add_argument(
        "--stable-tolerance",
        type=float,
        default=0.0,
        help="share of changed pixels under which the class map counts as "
        "stable (default 0: identical)",
    )
    parser.add_argument(
        "--benchmark",
        action="store_true",
        help="print latency median/p90 of every ui signature and exit",
    )
    parser.add_argument("--runs", type=int, default=20, help="timed runs per signature")
    parser.add_argument(
        "--weight-cache",
        metavar="DIR",
        help="keep an XNNPACK weight cache in DIR (created if missing): the first run writes "
        "it, later runs start faster (they skip repacking the weights). One file per model "
        "file and LiteRT version, about the model's size; needs litert_cache.py beside "
        "runner.py",
    )
    return parser


def main(argv=None):
    """The command line entry point; returns the process exit status."""
    args = build_parser().parse_args(argv)
    try:
        if args.threads < 1:
            raise RunnerError(f"--threads must be >= 1; received {args.threads}")
        if args.benchmark:
            image = load_image(list_images(args.inputs)[0]) if args.inputs else None
            rows = benchmark(
                args.model,
                args.manifest,
                args.precision,
                args.threads,
                args.runs,
                image=image,
                weight_cache=args.weight_cache,
            )
            print(format_benchmark(rows))
            return 0
        if not args.inputs:
            raise RunnerError("give an image or a folder of images (or --benchmark)")
        run(
            args.inputs,
            args.output_dir,
            model=args.model,
            manifest=args.manifest,
            ui=args.ui,
            budget_ms=args.budget_ms,
            deadline_ms=args.deadline_ms,
            precision=args.precision,
            threads=args.threads,
            resize=args.resize,
            write_overlays=not args.no_overlay,
            alpha=args.alpha,
            max_iterations=args.max_iterations,
            stop_when_stable=not args.no_early_stop,
            stable_tolerance=args.stable_tolerance,
            log=print,
            weight_cache=args.weight_cache,
        )
        return 0
    except RunnerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
