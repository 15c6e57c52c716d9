"""RIGNet's unroll modes: one object per mode (paper Sec. 3.3), looked up by name.

`RIGNet(unroll_mode=...)` holds one `UnrollMode` (`RIGNet.unroll`), which owns the mode's gates,
its first iteration and its step, what a step reads, what each gate reads in a walk, and the
paper's label. base.py defines the interface; blockwise.py (parallel, multi_range),
sequential.py and network.py (network_recurrent, network_gated) the modes; registry.py the
table of names.
"""

from rignet_keras.models.unroll.base import BlockChain, UnrollMode
from rignet_keras.models.unroll.blockwise import BlockwiseUnroll, MultiRangeUnroll, ParallelUnroll
from rignet_keras.models.unroll.network import (
    NetworkGatedUnroll,
    NetworkRecurrentUnroll,
    NetworkUnroll,
)
from rignet_keras.models.unroll.registry import (
    UNROLL_MODE_CLASSES,
    is_feed_forward,
    paper_label,
    unroll_mode_class,
    unroll_mode_labels,
    unroll_modes,
)
from rignet_keras.models.unroll.sequential import SequentialUnroll

__all__ = [
    "UNROLL_MODE_CLASSES",
    "BlockChain",
    "BlockwiseUnroll",
    "MultiRangeUnroll",
    "NetworkGatedUnroll",
    "NetworkRecurrentUnroll",
    "NetworkUnroll",
    "ParallelUnroll",
    "SequentialUnroll",
    "UnrollMode",
    "is_feed_forward",
    "paper_label",
    "unroll_mode_class",
    "unroll_mode_labels",
    "unroll_modes",
]
