"""The one stepping loop of a step-wise graph: `init`, then `step` after `step`, carrying the state.

A step-wise export is two graphs, `init` (images -> prediction and state tensors) and `step`
(state -> the next prediction and the state tensors that change; `wire`). Whatever runs them
(LiteRT signature runners, SavedModel signatures, onnxruntime sessions) is seen here as a
`StepwiseGraph`: two callables and the names of the state tensors the step reads. The loop over
iterations (`iterate_stepwise`), the state carried from one iteration to the next
(`first_state`, `carry_state`), the outputs of many images gathered per iteration
(`outputs_by_iteration`) and the calls a latency figure times (`stepwise_calls`) are written
here once; `segmenters.AnytimeSegmenter` (LiteRT), the exporter's parity checks and quality
scores (every format, `rignet_keras.export.runners`) and the benchmarks use them.

Like the rest of the runtime, this module imports NumPy only: a format's own library is the
business of whoever builds the callables.
"""

import dataclasses
from collections.abc import Callable

import numpy as np

from .errors import RunnerError
from .wire import CLASS_MAP, PROBABILITIES


def _same(value):
    return value


@dataclasses.dataclass(frozen=True)
class StepwiseGraph:
    """A step-wise graph pair of any format, as callables.

    Attributes:
        init: `init(images)` with uint8 (N, H, W, 3) -> {output name: tensor}: the prediction
            after one iteration (`class_map` (N, H, W), `probabilities` (N, H, W, C)) and every
            state tensor `state_<i>` the step reads.
        step: `step(state)` with {state name: tensor} -> the same outputs one iteration later
            (the prediction, and the state tensors that change).
        state_inputs: the names of the state tensors `step` reads.
        keep: how a state tensor is held until the next step (LiteRT: `np.array`, a copy of
            the runner's output); default: as returned.
        batch: the most images one `init` call takes (LiteRT graphs: 1); None: any number.
    """

    init: Callable
    step: Callable
    state_inputs: tuple
    keep: Callable = _same
    batch: int | None = None


def first_state(outputs, state_inputs, keep=_same):
    """The state after `init`: {name: keep(outputs[name])} for each name the step reads.

    Raises:
        RunnerError: naming a state tensor that `outputs` lacks.
    """
    missing = [name for name in state_inputs if name not in outputs]
    if missing:
        raise RunnerError(
            f"the step-wise graph's init returns no state {missing}; it returns {sorted(outputs)}"
        )
    return {name: keep(outputs[name]) for name in state_inputs}


def carry_state(state, outputs, keep=_same):
    """Carries a step's `outputs` into `state` (in place): each state tensor the step returned
    replaces the one held; those it did not return stay. Returns `state`."""
    for name in state:
        if name in outputs:
            state[name] = keep(outputs[name])
    return state


def _check_iterations(iterations):
    if iterations is None:
        return
    if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)):
        raise RunnerError(f"iterations must be an int >= 1 or None; received {iterations!r}")
    if iterations < 1:
        raise RunnerError(f"iterations must be >= 1; received {iterations!r}")


def iterate_stepwise(graph, images, iterations=None):
    """Runs `graph` on `images`: `init`, then one `step` per further iteration, each fed the
    state the last one returned (no iteration is ever recomputed).

    Args:
        graph: a `StepwiseGraph`.
        images: uint8 (N, H, W, 3), at most `graph.batch` images.
        iterations: how many iterations (`init` is the first); None: until the caller stops
            (closes the generator or stops asking).

    Returns:
        A generator of each iteration's outputs, as `graph.init` / `graph.step` return them
        (a dict). Each iteration runs when it is asked for, so the time between two `next`
        calls is the iteration's.

    Raises:
        RunnerError: `iterations` is not None or an int >= 1 (raised at once).
    """
    _check_iterations(iterations)
    return _iterations(graph, images, iterations)


def _iterations(graph, images, iterations):
    outputs = graph.init(images)
    state = first_state(outputs, graph.state_inputs, graph.keep)
    yield outputs
    done = 1
    while iterations is None or done < iterations:
        outputs = graph.step(state)
        carry_state(state, outputs, graph.keep)
        done += 1
        yield outputs


def outputs_by_iteration(graph, images, iterations, batch=None, names=(CLASS_MAP, PROBABILITIES)):
    """The outputs of `iterations` iterations on many images, gathered per iteration.

    The images run in groups of `batch` (None: all at once), never more than `graph.batch`
    (LiteRT: one by one); each group runs `iterate_stepwise`.

    Args:
        graph: a `StepwiseGraph`.
        images: uint8 (N, H, W, 3).
        iterations: an int >= 1.
        batch: the most images per group; None: all of them.
        names: the outputs to gather.

    Returns:
        A list of `iterations` dicts {name: NumPy array with N first}: entry k - 1 holds the
        outputs after k iterations (`class_map` (N, H, W), `probabilities` (N, H, W, C)).
    """
    if iterations is None:
        raise RunnerError("outputs_by_iteration needs a number of iterations; received None")
    _check_iterations(iterations)
    size = len(images) if batch is None else int(batch)
    if graph.batch is not None:
        size = min(size, graph.batch)
    size = max(size, 1)
    gathered = [{name: [] for name in names} for _ in range(iterations)]
    for start in range(0, len(images), size):
        group = images[start : start + size]
        for k, outputs in enumerate(iterate_stepwise(graph, group, iterations)):
            for name in names:
                gathered[k][name].append(np.asarray(outputs[name]))
    return [{name: np.concatenate(parts) for name, parts in k.items()} for k in gathered]


def stepwise_calls(graph, images):
    """The two calls a step-wise latency figure times, on `images` (usually one image):
    `init` (with its state kept, as a run keeps it) and one `step` from the state `init`
    returns (the step's outputs are not carried, so every call does the same work).

    Returns:
        (init call, step call): callables of no argument.
    """
    state = first_state(graph.init(images), graph.state_inputs, graph.keep)

    def init_call():
        return first_state(graph.init(images), graph.state_inputs, graph.keep)

    def step_call():
        return graph.step(state)

    return init_call, step_call
