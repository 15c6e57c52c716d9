"""The runtime's one stepping loop (`rignet_runtime.stepping`) on a stand-in graph pair.

The stand-in counts: `init` returns the images plus one as its prediction and state, each `step`
adds one more, so every output says which iteration made it and from which state.
"""

import numpy as np
import pytest

from rignet_runtime import CLASS_MAP, PROBABILITIES, RunnerError
from rignet_runtime.stepping import (
    StepwiseGraph,
    carry_state,
    first_state,
    iterate_stepwise,
    outputs_by_iteration,
    stepwise_calls,
)


class Counting:
    """A step-wise pair whose state is a count per image; it records every call's batch."""

    def __init__(self, batch=None, keep=None):
        self.calls = []
        self.batch = batch
        self.keep = keep

    def init(self, images):
        self.calls.append(("init", len(images)))
        count = images[..., 0].astype(np.int32) + 1
        return self._outputs(count, {"state_0": images, "state_1": count})

    def step(self, state):
        self.calls.append(("step", len(state["state_1"])))
        count = state["state_1"] + 1
        return self._outputs(count, {"state_1": count})

    @staticmethod
    def _outputs(count, states):
        probabilities = np.stack([count, -count], -1).astype(np.float32)
        return {CLASS_MAP: count, PROBABILITIES: probabilities, "extra": 0, **states}

    def graph(self):
        extra = {} if self.keep is None else {"keep": self.keep}
        return StepwiseGraph(
            init=self.init,
            step=self.step,
            state_inputs=("state_0", "state_1"),
            batch=self.batch,
            **extra,
        )


def _images(n=5):
    return np.arange(n * 2 * 3 * 3, dtype=np.uint8).reshape(n, 2, 3, 3) % 7


def test_every_iteration_steps_from_the_last_state():
    images = _images(2)
    outputs = list(iterate_stepwise(Counting().graph(), images, 4))
    assert len(outputs) == 4
    for k, out in enumerate(outputs, 1):
        np.testing.assert_array_equal(out[CLASS_MAP], images[..., 0].astype(np.int32) + k)


def test_iterations_run_when_asked_for():
    counting = Counting()
    iterations = iterate_stepwise(counting.graph(), _images(1))
    assert counting.calls == []
    for _ in range(3):
        next(iterations)
    iterations.close()
    assert counting.calls == [("init", 1), ("step", 1), ("step", 1)]


def test_the_state_is_kept_with_keep_and_carried_where_returned():
    kept = []

    def keep(value):
        kept.append(value)
        return np.array(value)

    outputs = {"state_0": np.zeros(2), "state_1": np.ones(2), "other": 5}
    state = first_state(outputs, ("state_0", "state_1"), keep)
    assert sorted(state) == ["state_0", "state_1"] and len(kept) == 2
    assert state["state_1"] is not outputs["state_1"]
    carried = carry_state(state, {"state_1": np.full(2, 7.0), "other": 1}, keep)
    assert carried is state and sorted(state) == ["state_0", "state_1"]
    np.testing.assert_array_equal(state["state_1"], [7.0, 7.0])
    np.testing.assert_array_equal(state["state_0"], [0.0, 0.0])


def test_a_missing_state_tensor_is_named():
    with pytest.raises(RunnerError, match=r"init returns no state \['state_2'\]"):
        first_state({"state_0": 1}, ("state_0", "state_2"))


@pytest.mark.parametrize("iterations", [0, -1, 2.0, True, "3"])
def test_bad_iteration_counts_are_refused_at_once(iterations):
    with pytest.raises(RunnerError, match="iterations must be"):
        iterate_stepwise(Counting().graph(), _images(1), iterations)


@pytest.mark.parametrize("batch, graph_batch, calls", [(None, None, 1), (2, None, 3), (None, 1, 5)])
def test_outputs_by_iteration_equal_one_image_at_a_time(batch, graph_batch, calls):
    images = _images(5)
    counting = Counting(batch=graph_batch)
    gathered = outputs_by_iteration(counting.graph(), images, 3, batch=batch)
    assert [c for c in counting.calls if c[0] == "init"] == [
        ("init", len(g)) for g in np.array_split(images, calls)
    ]
    assert len(gathered) == 3
    for k, outputs in enumerate(gathered):
        assert sorted(outputs) == sorted([CLASS_MAP, PROBABILITIES])
        alone = [list(iterate_stepwise(Counting().graph(), x[None], 3))[k] for x in images]
        for name in (CLASS_MAP, PROBABILITIES):
            np.testing.assert_array_equal(outputs[name], np.concatenate([a[name] for a in alone]))


def test_outputs_by_iteration_needs_a_count():
    with pytest.raises(RunnerError, match="needs a number of iterations"):
        outputs_by_iteration(Counting().graph(), _images(1), None)


def test_stepwise_calls_repeat_the_same_work():
    counting = Counting(keep=np.array)
    init_call, step_call = stepwise_calls(counting.graph(), _images(1))
    first = step_call()[CLASS_MAP]
    init_call()
    np.testing.assert_array_equal(step_call()[CLASS_MAP], first)  # the state did not move
    assert counting.calls == [("init", 1), ("step", 1), ("init", 1), ("step", 1)]
