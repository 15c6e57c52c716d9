"""The export's default options, in one place: `export_model`, `check_export_options` and
`export/export_model.py` all read them. Plain constants: importing this imports no TensorFlow,
so the command line's `--help` stays fast."""

# What a device needs: the multi-signature TFLite file (and the step-wise one, where the model
# steps) and the manifest. The rest is written on request.
DEFAULT_FORMATS = ("tflite",)
DEFAULT_PRECISIONS = ("float32",)
DEFAULT_TFLITE_LAYOUTS = ("multi",)
DEFAULT_STEPWISE_ITERATIONS = 4
# The TFLite graphs split wider k x k convolutions into sums over at most this many input
# channels (`layout.py`). Which convolutions gain, and by how much, is measured in BENCHMARKS.md:
# splits down to 512 input channels gained; halving 768 channels, or a classifier's few filters,
# did not.
DEFAULT_MAX_INPUT_CHANNELS = 512
# How the TFLite graphs apply the gated passes' batch-norm statistics: "corrected" (the first
# pass's folded into the one copy of each kernel, a per-channel correction on the gated passes)
# or "folded" (each pass's folded into a kernel copy of its own: about twice the file). The sizes
# and latencies of both are in BENCHMARKS.md.
DEFAULT_GATED_BATCH_NORM = "corrected"
DEFAULT_NUM_CALIBRATION_IMAGES = 8
DEFAULT_NUM_PARITY_IMAGES = 2
# Timed runs per signature for the manifest's latencies, after untimed warm-up runs.
DEFAULT_LATENCY_RUNS = 15
DEFAULT_LATENCY_WARMUP = 3
DEFAULT_THREADS = 2
DEFAULT_OPSET = 18
DEFAULT_STEM = "rignet"
# Validation images every exported file is scored on, when a validation source is given.
DEFAULT_VALIDATION_IMAGES = 64
