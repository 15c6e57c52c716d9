"""The device runtime of exported RIGNets: NumPy, Pillow and `ai_edge_litert` only.

This folder is self-contained (relative imports only, never TensorFlow or Keras): it runs as
`rignet_runtime` inside the project, and copied alone to a device under any name:

    cp -r rignet_runtime /device/rignet_runtime
    cd /device && python -m rignet_runtime photo.jpg --manifest export_dir --budget-ms 40

It is also the one source of the export wire format (`wire`: tensor and signature names, the
manifest's identity) that the exporter imports. Modules, one job each:

    wire          tensor, signature and manifest names
    errors        RunnerError, the user-facing error
    manifest      reading a manifest, checking its files (size, SHA-256), choosing a graph
                  (by latency budget and/or recorded quality)
    jpeg          jpeg_fault: corrupt JPEG scan data that libjpeg only warns about
    images        image files in, palette PNG masks and overlays out
    latency       measure_latency, the one latency-statistics helper
    segmenters    LiteRT interpreters, Segmenter (ui graphs), AnytimeSegmenter (step-wise)
    stepping      the one init-then-steps loop and its state carry-over, format-neutral
    atomic        the one atomic file writer (temporary sibling, fsync, os.replace)
    stopping      StoppingRule: when an anytime run's answer has settled (stable, confident)
    litert_cache  the XNNPACK weight cache (`--weight-cache`)
    batch         the batch runner: which graph and why, one mask per image
    benchmark     latencies on this device, and a manifest copy that records them
    cli           the command line (`python -m rignet_runtime`)
"""

from .batch import choose_by_measurement, describe_plan, resolve_model, run
from .benchmark import benchmark, device_manifest, format_benchmark, write_device_manifest
from .cli import build_parser, check_arguments, main
from .errors import RunnerError
from .images import (
    IMAGE_SUFFIXES,
    fit_image,
    list_images,
    load_image,
    output_paths,
    overlay,
    read_image_file,
    resize_mask,
    voc_palette,
    write_mask,
    write_overlay,
)
from .latency import latency_statistics, measure_latency
from .litert_cache import DEFAULT_THREADS, CachedInterpreter, cache_file_for
from .manifest import (
    artifact_path,
    describe_quality,
    find_artifact,
    find_stepwise,
    latency_source,
    load_manifest,
    manifest_precisions,
    select_graph,
    select_ui,
    sha256_file,
    verify_artifact,
)
from .segmenters import (
    MAX_ANYTIME_ITERATIONS,
    AnytimeResult,
    AnytimeSegmenter,
    Segmenter,
    make_interpreter,
    ui_signatures,
)
from .stopping import DEFAULT_STOPPING, STOP_TESTS, StoppingRule
from .wire import (
    CLASS_MAP,
    IMAGE_INPUT,
    INIT_SIGNATURE,
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    MANIFEST_VERSION,
    PROBABILITIES,
    STATE_PREFIX,
    STEP_SIGNATURE,
    UI_PREFIX,
    signature_ui,
    ui_signature,
)

__all__ = [
    "CLASS_MAP",
    "DEFAULT_STOPPING",
    "DEFAULT_THREADS",
    "IMAGE_INPUT",
    "IMAGE_SUFFIXES",
    "INIT_SIGNATURE",
    "MANIFEST_FORMAT",
    "MANIFEST_NAME",
    "MANIFEST_VERSION",
    "MAX_ANYTIME_ITERATIONS",
    "PROBABILITIES",
    "STATE_PREFIX",
    "STEP_SIGNATURE",
    "STOP_TESTS",
    "UI_PREFIX",
    "AnytimeResult",
    "AnytimeSegmenter",
    "CachedInterpreter",
    "RunnerError",
    "Segmenter",
    "StoppingRule",
    "artifact_path",
    "benchmark",
    "build_parser",
    "cache_file_for",
    "check_arguments",
    "choose_by_measurement",
    "describe_plan",
    "describe_quality",
    "device_manifest",
    "find_artifact",
    "find_stepwise",
    "fit_image",
    "format_benchmark",
    "latency_source",
    "list_images",
    "load_image",
    "read_image_file",
    "load_manifest",
    "main",
    "make_interpreter",
    "manifest_precisions",
    "latency_statistics",
    "measure_latency",
    "output_paths",
    "overlay",
    "resize_mask",
    "resolve_model",
    "run",
    "select_graph",
    "select_ui",
    "sha256_file",
    "signature_ui",
    "ui_signature",
    "ui_signatures",
    "verify_artifact",
    "voc_palette",
    "write_device_manifest",
    "write_mask",
    "write_overlay",
]
