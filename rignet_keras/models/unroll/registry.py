"""The unroll modes by name: the one table `RIGNet(unroll_mode=...)` is looked up in.

Adding a mode is one `UnrollMode` subclass and one entry in `UNROLL_MODE_CLASSES`; the mode
names (`unroll_modes`, `arguments.UNROLL_MODES`), the paper's labels (`unroll_mode_labels`,
`paper_label`, `is_feed_forward`) and the argument checks all read this table.
"""

from rignet_keras.models.unroll.blockwise import MultiRangeUnroll, ParallelUnroll, blockwise_label
from rignet_keras.models.unroll.network import NetworkGatedUnroll, NetworkRecurrentUnroll
from rignet_keras.models.unroll.sequential import SequentialUnroll

# `unroll_mode` (the serialized config key) -> its class, in the order the modes are listed.
UNROLL_MODE_CLASSES = {
    cls.name: cls
    for cls in (
        SequentialUnroll,
        ParallelUnroll,
        MultiRangeUnroll,
        NetworkRecurrentUnroll,
        NetworkGatedUnroll,
    )
}


def unroll_modes():
    """The registered `unroll_mode` names, in order."""
    return tuple(UNROLL_MODE_CLASSES)


def unroll_mode_labels():
    """{unroll_mode: the paper's name of the unroll} ("parallel" -> "Pu")."""
    return {name: cls.label for name, cls in UNROLL_MODE_CLASSES.items()}


def _registered(unroll_mode):
    """The class of `unroll_mode`, or None for anything that is not a registered name."""
    return UNROLL_MODE_CLASSES.get(unroll_mode) if isinstance(unroll_mode, str) else None


def unroll_mode_class(unroll_mode):
    """The `UnrollMode` subclass of `unroll_mode`; a ValueError naming the known modes else."""
    cls = _registered(unroll_mode)
    if cls is None:
        raise ValueError(f"unroll_mode must be one of {unroll_modes()}; received {unroll_mode!r}")
    return cls


def is_feed_forward(unroll_mode, feedback_blocks):
    """Whether a model of `unroll_mode` with `feedback_blocks` is the feed-forward baseline
    (no gates in a block-wise mode); False for a name that is not a mode."""
    cls = _registered(unroll_mode)
    return cls is not None and cls.is_feed_forward(feedback_blocks)


def paper_label(
    unroll_mode,
    network,
    *,
    feedback_blocks,
    num_iterations,
    gate_combine="mul_sigmoid",
    gate_pooling="avg",
):
    """The paper's name of a gated model, e.g. "ResNet50-RIGNet Pu<6..4>, ui=6" for
    `network` "ResNet50" (`UnrollMode.paper_label`). A name that is not a mode is shown as it
    is, in the block-wise layout (the model refuses it when built)."""
    kwargs = dict(
        feedback_blocks=feedback_blocks,
        num_iterations=num_iterations,
        gate_combine=gate_combine,
        gate_pooling=gate_pooling,
    )
    cls = _registered(unroll_mode)
    if cls is None:
        return blockwise_label(unroll_mode, network, **kwargs)
    return cls.paper_label(network, **kwargs)
