"""Graphs on LiteRT: interpreters, and the segmenters that run a ui graph or a step-wise graph.

`Segmenter` runs one ui signature (`ui_k`) of a `.tflite` file on single images.
`AnytimeSegmenter` runs the step-wise graph (`init`, then `step` after `step`, through the
runtime's one stepping loop, `stepping.iterate_stepwise`): every iteration of an image
(`iterate`), or until a deadline, the stopping rule (`stopping`: a stable class map, a confident
one) or an iteration limit (`run`), never recomputing a finished iteration.
"""

import dataclasses
import os
import time

import numpy as np

from .errors import RunnerError
from .litert_cache import DEFAULT_THREADS, CachedInterpreter
from .litert_log import without_routine_lines
from .stepping import StepwiseGraph, carry_state, first_state, iterate_stepwise
from .stopping import DEFAULT_STOPPING, StoppingRule
from .wire import (
    CLASS_MAP,
    IMAGE_INPUT,
    INIT_SIGNATURE,
    PROBABILITIES,
    STEP_SIGNATURE,
    signature_ui,
)

# An anytime run with neither a deadline nor max_iterations stops here even if never stable.
MAX_ANYTIME_ITERATIONS = 32


def make_interpreter(model_path, threads=DEFAULT_THREADS, weight_cache=None):
    """An `ai_edge_litert` interpreter over a `.tflite` file, with `threads` CPU threads.

    Args:
        model_path: a `.tflite` file.
        threads: CPU threads.
        weight_cache: None (default): the classic `Interpreter`. A folder (created if missing):
            a `litert_cache.CachedInterpreter`, a `CompiledModel` that reads the file's XNNPACK
            weight cache from the folder, or writes it there on the first run, in the part of
            the Interpreter API the runtime uses (same outputs, faster later cold starts; a
            graph with quantized activations loads without a cache, see `litert_cache`).

    LiteRT's routine INFO line on stderr ("Created TensorFlow Lite XNNPACK delegate for CPU.")
    is left out; its other lines pass (`litert_log`).
    """
    model_path = os.fspath(model_path)
    if not os.path.isfile(model_path):
        raise RunnerError(f"model {model_path!r} does not exist")
    try:
        if weight_cache:
            return CachedInterpreter(model_path, os.fspath(weight_cache), threads)
        from ai_edge_litert.interpreter import Interpreter

        def load():
            interpreter = Interpreter(model_path=model_path, num_threads=int(threads))
            interpreter.allocate_tensors()  # applies XNNPACK, which logs a routine INFO line
            return interpreter

        return without_routine_lines(load)
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

    def warm_up(self):
        """One untimed call on a blank image: pays the cold start (allocation, weight packing)
        before anything is timed."""
        self(np.zeros(self.input_size + (3,), np.uint8))

    def __call__(self, image):
        out = self.runner(**{IMAGE_INPUT: np.ascontiguousarray(image[None])})
        probabilities = out[PROBABILITIES][0]
        if CLASS_MAP not in out:  # a MediaPipe-ready file: the per-class scores only
            return np.argmax(probabilities, axis=-1).astype(np.int32), probabilities
        return out[CLASS_MAP][0], probabilities


@dataclasses.dataclass
class AnytimeResult:
    """What an anytime run produced.

    Attributes:
        class_map: int32 (H, W), the last prediction.
        probabilities: float32 (H, W, C).
        iterations: how many iterations ran (1 = the feed-forward pass).
        elapsed_ms: wall time from the start of `init` to the end of the last step.
        stop_reason: "deadline" (the next step would not have fitted), "max_iterations", or
            the stopping rule's reason (`stopping.StoppingRule.decide`): "stable" (the class
            map stopped changing), "confident" (few pixels below the confidence level) or
            "stable+confident".
        step_ms: the duration of each iteration, `init` first.
        changed: the share of pixels whose label changed at each step (one per step).
        uncertain: the share of pixels below the rule's confidence level after each
            iteration, `init` first.
    """

    class_map: np.ndarray
    probabilities: np.ndarray
    iterations: int
    elapsed_ms: float
    stop_reason: str
    step_ms: list
    changed: list
    uncertain: list = dataclasses.field(default_factory=list)


def stopping_rule(stopping=None, stop_when_stable=None, stable_tolerance=None):
    """The `StoppingRule` of an anytime run: `stopping` itself, or one built from the older
    `stop_when_stable` / `stable_tolerance` arguments (never both), or `DEFAULT_STOPPING`."""
    legacy = stop_when_stable is not None or stable_tolerance is not None
    if stopping is not None:
        if legacy:
            raise RunnerError("give either stopping or stop_when_stable/stable_tolerance, not both")
        if not isinstance(stopping, StoppingRule):
            raise RunnerError(f"stopping must be a StoppingRule; received {stopping!r}")
        return stopping
    if not legacy:
        return DEFAULT_STOPPING
    if stop_when_stable is False:
        return StoppingRule(test="none")
    return StoppingRule(
        test="stable", stable_tolerance=0.0 if stable_tolerance is None else stable_tolerance
    )


class AnytimeSegmenter:
    """Runs the step-wise graph (signatures `init` and `step`) iteration after iteration.

    Iteration 1 is `init`; each further iteration is one `step`, fed the state the last one
    returned, so no iteration is ever recomputed. `run` stops before a step that would end past
    the deadline (its cost is estimated by the last step's duration), when the stopping rule
    fires after an iteration (`stopping.StoppingRule`: the class map stopped changing, or few
    pixels are still uncertain), or at `max_iterations` (`MAX_ANYTIME_ITERATIONS` when None).

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
        # The two signatures as the runtime's stepping loop sees them: one image per call, each
        # state tensor copied out of the runner's output. (The callables hold the runners, not
        # `self`: no reference cycle keeps the interpreter alive.)
        init_runner, step_runner = self.init_runner, self.step_runner
        self.graph = StepwiseGraph(
            init=lambda images: init_runner(**{IMAGE_INPUT: np.ascontiguousarray(images)}),
            step=lambda state: step_runner(**state),
            state_inputs=tuple(self.state_inputs),
            keep=np.array,
            batch=1,
        )

    def warm_up(self):
        """An untimed `init` and `step` on a blank image: pays both graphs' cold start before
        a deadline is timed."""
        _, state = self.init(np.zeros(self.input_size + (3,), np.uint8))
        self.step(state)

    def init(self, image):
        """Iteration 1 on one image (H, W, 3): returns (outputs dict, state dict)."""
        out = self.graph.init(image[None])
        return out, first_state(out, self.graph.state_inputs, self.graph.keep)

    def step(self, state):
        """One more iteration from `state` (updated in place and returned with the outputs)."""
        out = self.graph.step(state)
        return out, carry_state(state, out, self.graph.keep)

    def iterate(self, image, iterations=None):
        """Every iteration of one image: `init`, then a `step` per further iteration.

        Args:
            image: uint8 RGB (H, W, 3) at the graph's size.
            iterations: how many (`init` is the first); None: until the caller stops.

        Returns:
            A generator of each iteration's outputs dict as the graph returns them
            (`class_map` int32 (1, H, W), `probabilities` float32 (1, H, W, C), the state
            tensors). An iteration runs when it is asked for, so the time a `next` call takes
            is that iteration's (`stepping.iterate_stepwise`).
        """
        return iterate_stepwise(self.graph, image[None], iterations)

    def run(
        self,
        image,
        deadline_ms=None,
        max_iterations=None,
        stopping=None,
        *,
        stop_when_stable=None,
        stable_tolerance=None,
    ):
        """Anytime inference on one image (H, W, 3) uint8; returns an `AnytimeResult`.

        Args:
            image: uint8 RGB (H, W, 3) at the graph's size.
            deadline_ms: stop before a step that would end past this; None: no deadline.
            max_iterations: at most this many iterations (`init` included).
            stopping: the `StoppingRule` (None: `stopping.DEFAULT_STOPPING`), checked after
                every iteration, `init` included.
            stop_when_stable, stable_tolerance: the older form of a stability rule (False: no
                early stop); not together with `stopping`.
        """
        rule = stopping_rule(stopping, stop_when_stable, stable_tolerance)
        if deadline_ms is not None and deadline_ms <= 0:
            raise RunnerError(f"deadline_ms must be positive; received {deadline_ms!r}")
        if max_iterations is not None and max_iterations < 1:
            raise RunnerError(f"max_iterations must be >= 1; received {max_iterations!r}")
        start = time.perf_counter()
        iterations = self.iterate(image)
        out = next(iterations)
        step_ms = [(time.perf_counter() - start) * 1000.0]
        class_map, probabilities = out[CLASS_MAP][0], out[PROBABILITIES][0]
        stats = rule.statistics(class_map, probabilities)
        changed, uncertain = [], [stats["uncertain"]]
        limit = MAX_ANYTIME_ITERATIONS if max_iterations is None else max_iterations
        reason = rule.decide(stats) or "max_iterations"
        while reason == "max_iterations" and len(step_ms) < limit:
            elapsed = (time.perf_counter() - start) * 1000.0
            if deadline_ms is not None and elapsed + step_ms[-1] > deadline_ms:
                reason = "deadline"
                break
            step_start = time.perf_counter()
            out = next(iterations)
            step_ms.append((time.perf_counter() - step_start) * 1000.0)
            new_map, probabilities = out[CLASS_MAP][0], out[PROBABILITIES][0]
            stats = rule.statistics(new_map, probabilities, class_map)
            changed.append(stats["changed"])
            uncertain.append(stats["uncertain"])
            class_map = new_map
            reason = rule.decide(stats) or "max_iterations"
        iterations.close()
        return AnytimeResult(
            class_map=class_map,
            probabilities=probabilities,
            iterations=len(step_ms),
            elapsed_ms=(time.perf_counter() - start) * 1000.0,
            stop_reason=reason,
            step_ms=[round(t, 3) for t in step_ms],
            changed=changed,
            uncertain=uncertain,
        )
