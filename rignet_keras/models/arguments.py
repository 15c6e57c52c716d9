"""The arguments of `RIGNet` that do not need a built network, and their checks.

`RIGNet.__init__` calls `check_rignet_arguments` before it creates a layer, so a bad value
stops in one line naming the argument and the value. The batch-norm options are named here
once; the unroll modes' names are those of the registry (`rignet_keras.models.unroll`), listed
here as tuples; docs/DESIGN.md describes them.
"""

import keras
from keras import layers

from rignet_keras.layers.gates import check_gate_options
from rignet_keras.models.state import NUM_BLOCKS
from rignet_keras.models.unroll.registry import UNROLL_MODE_CLASSES, unroll_mode_class

UNROLL_MODES = tuple(UNROLL_MODE_CLASSES)
BLOCKWISE_MODES = tuple(n for n, cls in UNROLL_MODE_CLASSES.items() if not cls.network_wide)
NETWORK_MODES = tuple(n for n, cls in UNROLL_MODE_CLASSES.items() if cls.network_wide)
RECURRENT_BATCH_NORM = ("gated_passes", "first_pass", "every_pass")


def check_num_iterations(value, name="num_iterations"):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1; received {value!r}")
    return value


def check_feedback_blocks(value):
    """Normalises `feedback_blocks` to a (first, last) tuple, or None for no gates."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, NUM_BLOCKS)
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        or not 1 <= value[0] <= value[1] <= NUM_BLOCKS
    ):
        raise ValueError(
            "feedback_blocks must be None or (first, last) with 1 <= first <= last <= "
            f"{NUM_BLOCKS} (e.g. (4, 6) for the paper's <6..4>); received {value!r}"
        )
    return tuple(value)


def check_num_classes(value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"num_classes must be a positive int; received {value!r}")
    return value


def check_width_multiplier(value):
    """`value` as a float if it is a number > 0, else a ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"width_multiplier must be a number > 0; received {value!r}")
    if not value > 0:
        raise ValueError(f"width_multiplier must be > 0; received {value!r}")
    return float(value)


def check_rignet_arguments(
    *,
    num_classes,
    unroll_mode,
    num_iterations,
    gate_pooling,
    gate_combine,
    gate_bottleneck,
    feedback_blocks,
    return_all_iterations,
    width_multiplier,
    recurrent_batch_norm,
    recompute_blocks,
):
    """Checks `RIGNet`'s arguments that need no network.

    Returns:
        (feedback_blocks, width_multiplier), normalised (`check_feedback_blocks`, a float).

    Raises:
        ValueError: naming the first bad argument and its value.
    """
    check_num_classes(num_classes)
    mode = unroll_mode_class(unroll_mode)
    check_num_iterations(num_iterations)
    check_gate_options(gate_pooling, gate_combine, gate_bottleneck)
    feedback_blocks = check_feedback_blocks(feedback_blocks)
    if return_all_iterations and not mode.predicts_every_iteration:
        raise ValueError(
            "return_all_iterations needs a parallel or network-wide unroll_mode; "
            f"{unroll_mode!r} makes one prediction"
        )
    width_multiplier = check_width_multiplier(width_multiplier)
    if recurrent_batch_norm not in RECURRENT_BATCH_NORM:
        raise ValueError(
            f"recurrent_batch_norm must be one of {RECURRENT_BATCH_NORM}; received "
            f"{recurrent_batch_norm!r}"
        )
    if recompute_blocks and keras.backend.backend() != "tensorflow":
        # JAX's checkpoint refuses the batch-norm statistics updates inside a block.
        raise ValueError(
            "recompute_blocks=True needs the TensorFlow backend; the backend is "
            f"{keras.backend.backend()!r}"
        )
    return feedback_blocks, width_multiplier


def check_custom_blocks(backbone):
    """The six blocks of a custom backbone: a list of six Keras layers, or a callable returning
    one; a ValueError otherwise."""
    blocks = backbone() if callable(backbone) and not isinstance(backbone, list) else backbone
    if not isinstance(blocks, (list, tuple)) or not all(
        isinstance(b, layers.Layer) for b in blocks
    ):
        raise ValueError(
            "backbone must be a registered name, a list of six Keras layers, or a callable "
            f"returning one; received {type(blocks).__name__}"
        )
    if len(blocks) != NUM_BLOCKS:
        raise ValueError(
            f"a custom backbone must have {NUM_BLOCKS} blocks (B1-B6, the head last); "
            f"received {len(blocks)}"
        )
    return list(blocks)
