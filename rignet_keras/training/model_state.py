"""The training state that `save_weights` does not keep, read and restored for an exact resume:
the seed generators' states (dropout), the metrics' running states, and the step's logs as plain
Python values; and `saved_variables`, what a weights file of a compiled model holds.
"""

import keras
import numpy as np


def saved_variables(model):
    """The variables a weights file of `model` holds: its weights, with its optimizer's when it
    has a built one (`save_weights` of a compiled model includes them)."""
    variables = list(model.weights)
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and getattr(optimizer, "built", False):
        variables += list(optimizer.variables)
    return variables


def _seed_variables(model):
    return [v for v in model.variables if "seed_generator_state" in v.path]


def seed_states(model):
    """The states of the model's seed generators (dropout's random state), in variable order:
    `save_weights` does not keep them. (Matched by position, as their names get a suffix that
    depends on how many were created before in the process.)"""
    return [keras.ops.convert_to_numpy(v).tolist() for v in _seed_variables(model)]


def restore_seed_states(model, states):
    """Assigns `states` (from `seed_states`) to the model's seed generators; refuses, in one
    line, a count that differs from the model's."""
    variables = _seed_variables(model)
    if not states:
        return
    if len(states) != len(variables):
        raise ValueError(
            f"the backup holds {len(states)} random-generator states; the model has "
            f"{len(variables)}: it is not the model that was backed up"
        )
    for v, value in zip(variables, states, strict=True):
        v.assign(np.asarray(value, dtype=v.dtype))


def metric_states(model):
    """The variables of `model.metrics` (the epoch's running mean loss, ...) as nested lists, per
    metric: an epoch resumed mid-way reports the mean over all its steps."""
    return [[keras.ops.convert_to_numpy(v).tolist() for v in m.variables] for m in model.metrics]


def restore_metric_states(model, states):
    """Assigns `states` (from `metric_states`) to the model's metrics; refuses, in one line,
    states that do not match them."""
    metrics = model.metrics
    if len(states) != len(metrics) or any(
        len(s) != len(m.variables) for s, m in zip(states, metrics, strict=False)
    ):
        raise ValueError(
            "the backup's metric states do not match the model's metrics "
            f"({[m.name for m in metrics]}): it is not the model that was backed up"
        )
    for metric, values in zip(metrics, states, strict=True):
        for v, value in zip(metric.variables, values, strict=True):
            v.assign(np.asarray(value, dtype=v.dtype))


def python_logs(logs):
    """Keras logs (tensors, NumPy scalars) as a dict of plain Python numbers and strings."""
    out = {}
    for key, value in (logs or {}).items():
        if not isinstance(value, int | float | str):
            value = keras.ops.convert_to_numpy(value)
        out[key] = value.item() if isinstance(value, np.ndarray | np.generic) else value
    return out
