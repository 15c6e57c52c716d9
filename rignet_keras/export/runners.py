"""Running an exported file, whatever its format: one runner per format, one interface.

The exporter's parity checks (`checks`) and quality scores (`quality`) run every file they
measure through these runners, so that a format is opened and called in one place:

    TFLiteGraphs      a `.tflite` file on LiteRT (`ai_edge_litert`): `Segmenter` per ui
                      signature, `AnytimeSegmenter` for the step-wise pair (one image per call)
    SavedModelGraphs  a SavedModel folder on TensorFlow (its signatures, any batch)
    OnnxGraph         a `.onnx` file (one ui graph) on onnxruntime's CPU provider

Each has `run(name, images, names)` (uint8 (N, H, W, 3) -> {output name: NumPy array} of the
outputs `names`, both by default: `class_map` int32 (N, H, W), `probabilities` float32
(N, H, W, C)), `timed_call(name, images)` (a callable
of no argument that runs the signature once on the first image, inputs prepared: what a latency
figure times) and `stepwise()` (the `init`/`step` pair as the runtime's
`stepping.StepwiseGraph`, for `stepping.iterate_stepwise` and `stepping.outputs_by_iteration`).
`open_graphs(path, fmt, threads)` picks the runner; `run_signature` runs a signature over many
images in groups. TensorFlow and onnxruntime are imported only by the runners that need them.
"""

import os

import numpy as np

from rignet_runtime import (
    CLASS_MAP,
    DEFAULT_THREADS,
    IMAGE_INPUT,
    INIT_SIGNATURE,
    PROBABILITIES,
    STEP_SIGNATURE,
    AnytimeSegmenter,
    Segmenter,
    make_interpreter,
)
from rignet_runtime.stepping import StepwiseGraph

__all__ = [
    "OnnxGraph",
    "SavedModelGraphs",
    "TFLiteGraphs",
    "onnx_session",
    "open_graphs",
    "run_signature",
]


class TFLiteGraphs:
    """The signatures of a `.tflite` file on LiteRT (one interpreter for all of them).

    Args:
        path: a `.tflite` file.
        threads: CPU threads of the interpreter.
        interpreter: an existing interpreter over `path` to reuse.
    """

    def __init__(self, path, threads=DEFAULT_THREADS, interpreter=None):
        self.path = os.fspath(path)
        self.interpreter = interpreter or make_interpreter(self.path, threads)
        self._segmenters = {}

    def segmenter(self, name):
        """The `Segmenter` of ui signature `name` (made once)."""
        if name not in self._segmenters:
            self._segmenters[name] = Segmenter(
                self.path, signature=name, interpreter=self.interpreter
            )
        return self._segmenters[name]

    def run(self, name, images, names=(CLASS_MAP, PROBABILITIES)):
        """Signature `name` on every image, one call each: {output name: NumPy array} of the
        outputs `names` (those not asked for are neither copied nor stacked)."""
        segmenter = self.segmenter(name)
        kept = {key: [] for key in names}
        for image in images:
            class_map, probabilities = segmenter(image)
            for key, value in ((CLASS_MAP, class_map), (PROBABILITIES, probabilities)):
                if key in kept:
                    kept[key].append(value)
        return {key: np.stack(values) for key, values in kept.items()}

    def timed_call(self, name, images):
        """One call of signature `name` on `images[0]`."""
        segmenter, image = self.segmenter(name), images[0]
        return lambda: segmenter(image)

    def stepwise(self):
        """The file's `init`/`step` signatures (`AnytimeSegmenter.graph`: one image per call)."""
        return AnytimeSegmenter(self.path, interpreter=self.interpreter).graph


class SavedModelGraphs:
    """The signatures of a SavedModel folder on TensorFlow.

    Args:
        path: the SavedModel folder.
    """

    def __init__(self, path):
        import tensorflow as tf

        self.path = os.fspath(path)
        self.loaded = tf.saved_model.load(self.path)

    def signature(self, name):
        """The concrete function of signature `name`; ValueError naming the folder if absent."""
        if name not in self.loaded.signatures:
            raise ValueError(
                f"the SavedModel {self.path!r} has no signature {name!r}; it has "
                f"{sorted(self.loaded.signatures)}"
            )
        return self.loaded.signatures[name]

    def run(self, name, images, names=(CLASS_MAP, PROBABILITIES)):
        """Signature `name` on all `images` in one call: {output name: NumPy array} of the
        outputs `names`."""
        import tensorflow as tf

        outputs = self.signature(name)(**{IMAGE_INPUT: tf.constant(images)})
        return {key: outputs[key].numpy() for key in names}

    def timed_call(self, name, images):
        """One call of signature `name` on `images[:1]` (a tensor made beforehand)."""
        import tensorflow as tf

        function, one = self.signature(name), tf.constant(images[:1])
        return lambda: function(**{IMAGE_INPUT: one})

    def stepwise(self):
        """The `init`/`step` signatures; the state stays in TensorFlow tensors between steps."""
        import tensorflow as tf

        init, step = self.signature(INIT_SIGNATURE), self.signature(STEP_SIGNATURE)
        return StepwiseGraph(
            init=lambda images: init(**{IMAGE_INPUT: tf.constant(images)}),
            step=lambda state: step(**state),
            state_inputs=tuple(step.structured_input_signature[1]),
        )


def onnx_session(path, threads=DEFAULT_THREADS):
    """An onnxruntime CPU session over `path`: `threads` intra-op threads, one inter-op."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])


class OnnxGraph:
    """A `.onnx` file on onnxruntime's CPU provider. The exporter writes one ui graph per file,
    so every signature name runs that graph.

    Args:
        path: a `.onnx` file.
        threads: intra-op threads.
    """

    def __init__(self, path, threads=DEFAULT_THREADS):
        self.path = os.fspath(path)
        self.session = onnx_session(self.path, threads)
        self.output_names = [output.name for output in self.session.get_outputs()]

    def run(self, name, images, names=(CLASS_MAP, PROBABILITIES)):
        """The graph on all `images` in one call: {output name: NumPy array} of the outputs
        `names` (only those are computed)."""
        outputs = self.session.run(list(names), {IMAGE_INPUT: images})
        return dict(zip(names, outputs, strict=True))

    def timed_call(self, name, images):
        """One call of the graph on `images[:1]`."""
        session, one = self.session, images[:1]
        return lambda: session.run(None, {IMAGE_INPUT: one})

    def stepwise(self):
        raise ValueError(
            f"{self.path!r} holds one ui graph: the exporter writes no step-wise ONNX graphs"
        )


def open_graphs(path, fmt, threads=DEFAULT_THREADS):
    """The runner of an exported file of format `fmt` ("tflite", "saved_model" or "onnx")."""
    if fmt == "tflite":
        return TFLiteGraphs(path, threads)
    if fmt == "saved_model":
        return SavedModelGraphs(path)
    if fmt == "onnx":
        return OnnxGraph(path, threads)
    raise ValueError(f"no runner for format {fmt!r} ({os.fspath(path)!r})")


def run_signature(graphs, name, images, batch=None, names=(CLASS_MAP, PROBABILITIES)):
    """Signature `name` of a runner over all `images`, in calls of `batch` images (None: one
    call), the outputs `names` concatenated: {name: NumPy array with N first}."""
    size = len(images) if batch is None else int(batch)
    parts = [graphs.run(name, images[s : s + size], names) for s in range(0, len(images), size)]
    return {key: np.concatenate([part[key] for part in parts]) for key in names}
