"""The serving functions every export format is built from: one per ui, and the step-wise pair.

Every function takes uint8 RGB images, normalises them inside (with the model's
`preprocessing`), and returns a dict:
    "class_map": int32 (B, H, W), the argmax over classes;
    "probabilities": float32 (B, H, W, C), the softmax of the logits resized to the input.

The ui functions unroll the model `ui` times in a plain Python loop (the model's own driver), so
each export holds a static graph per ui, with no `tf.while_loop`.

The step-wise pair serves anytime inference (parallel, multi_range and network-wide modes):
    init(images) -> prediction + every state tensor "state_<i>" the step reads;
    step(state_<i>, ...) -> prediction + the state tensors that change ("state_<i>", i > 0).
The state tensors are the entries of `RecurrentState.flatten()` (rignet_keras/models/state.py):
`state_0` is the input of the first recurrent block (the images for the network-wide modes): it
never changes, so `step` takes it but does not return it, and the blocks before the first
recurrent block never run again; `state_<i>`, i > 0, is the output of the i-th recurrent block
(B6's logits last). Only the entries a step reads (`RIGNet.step_reads`) are inputs and outputs.
"""

import tensorflow as tf

from rignet_keras.models.rignet import RIGNet
from rignet_keras.models.state import RecurrentState
from rignet_keras.preprocessing import normalize
from rignet_runtime import (
    CLASS_MAP,
    IMAGE_INPUT,
    INIT_SIGNATURE,
    PROBABILITIES,
    STATE_PREFIX,
    STEP_SIGNATURE,
    ui_signature,
)

SERVING_DEFAULT = "serving_default"


def check_rignet(model, what="model"):
    """Raises `TypeError` unless `model` is a built-or-buildable `RIGNet`."""
    if not isinstance(model, RIGNet):
        raise TypeError(f"{what} must be a rignet_keras.RIGNet; received {type(model).__name__}")


def check_input_size(input_size):
    """Normalises `input_size` to an (H, W) tuple of positive ints, or None for dynamic."""
    if input_size is None:
        return None
    if isinstance(input_size, int) and not isinstance(input_size, bool):
        input_size = (input_size, input_size)
    try:
        height, width = (int(v) for v in input_size)
    except (TypeError, ValueError):
        raise ValueError(
            f"input_size must be (height, width), an int, or None; received {input_size!r}"
        ) from None
    if height < 1 or width < 1 or (height, width) != tuple(input_size):
        raise ValueError(f"input_size must hold positive ints; received {input_size!r}")
    return height, width


def image_spec(input_size=None, batch_size=None):
    """The uint8 image `tf.TensorSpec` (batch_size, H, W, 3); None dims are dynamic."""
    height, width = input_size or (None, None)
    return tf.TensorSpec((batch_size, height, width, 3), tf.uint8, name=IMAGE_INPUT)


def prediction_outputs(logits):
    """Logits (B, H, W, C) -> {"class_map": int32 (B, H, W), "probabilities": (B, H, W, C)}."""
    logits = tf.cast(logits, tf.float32)
    return {
        CLASS_MAP: tf.argmax(logits, axis=-1, output_type=tf.int32),
        PROBABILITIES: tf.nn.softmax(logits, axis=-1),
    }


def serving_function(model, num_iterations):
    """The function of signature `ui_<num_iterations>`: uint8 images (B, H, W, 3) -> outputs."""
    check_rignet(model)

    def serve(images):
        x = normalize(images, model.preprocessing)
        logits = model(x, training=False, num_iterations=num_iterations)
        return prediction_outputs(logits)

    serve.__name__ = ui_signature(num_iterations)
    return serve


def check_stepwise(model):
    """Raises `ValueError` saying why if `model` cannot be served step by step (`can_step`)."""
    check_rignet(model)
    model.check_can_step()


def state_indices(model):
    """Which entries of the flat state (`RecurrentState.flatten`) `model.step` reads, and which
    of them it changes.

    Returns:
        (read, carried): sorted index lists (`RIGNet.step_reads`); `carried` = `read` without 0,
        the inputs of the first recurrent block, which no step changes.
    """
    read = list(model.step_reads)
    return read, [i for i in read if i != 0]


def state_name(index):
    """The signature name of state entry `index`: "state_2"."""
    return f"{STATE_PREFIX}{index}"


def state_shapes(model, input_size):
    """The shapes (1, h, w, c) of every flat state entry for a fixed input size, from a dry run."""
    images = tf.zeros((1,) + tuple(input_size) + (3,), tf.float32)
    return [tuple(t.shape) for t in model.initial_state(images, training=False).flatten()]


def stepwise_functions(model, input_size, batch_size=None):
    """The `init` and `step` functions of the step-wise graphs, with their input signatures.

    Args:
        model: a `RIGNet` in a parallel, multi_range or network-wide mode.
        input_size: (H, W), fixed: the state tensors get static shapes.
        batch_size: the batch dimension of the signatures (None: dynamic).

    Returns:
        A dict {"init": (fn, [image spec]), "step": (fn, [{state name: spec}]),
        "state_shapes": [(1, h, w, c), ...], "read": [...], "carried": [...]}.
    """
    check_rignet(model)
    check_stepwise(model)
    input_size = check_input_size(input_size)
    if input_size is None:
        raise ValueError("step-wise graphs need a fixed input_size (height, width)")
    shapes = state_shapes(model, input_size)
    read, carried = state_indices(model)

    def outputs(state):
        logits = model.upsample(state.logits, input_size)
        return prediction_outputs(logits)

    def init(images):
        state = model.initial_state(normalize(images, model.preprocessing), training=False)
        result = outputs(state)
        flat = state.flatten()
        result.update({state_name(i): flat[i] for i in read})
        return result

    def step(states):
        # Entries the step never reads are not inputs; None makes a wrong `read` fail loudly.
        flat = [states[state_name(i)] if i in read else None for i in range(len(shapes))]
        new_state = model.step(RecurrentState.unflatten(flat), training=False).flatten()
        result = prediction_outputs(model.upsample(new_state[-1], input_size))
        result.update({state_name(i): new_state[i] for i in carried})
        return result

    init.__name__ = INIT_SIGNATURE
    step.__name__ = STEP_SIGNATURE
    step_spec = {
        state_name(i): tf.TensorSpec((batch_size,) + shapes[i][1:], tf.float32, name=state_name(i))
        for i in read
    }
    return {
        INIT_SIGNATURE: (init, [image_spec(input_size, batch_size)]),
        STEP_SIGNATURE: (step, [step_spec]),
        "state_shapes": shapes,
        "read": read,
        "carried": carried,
    }
