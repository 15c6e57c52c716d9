"""Serializable layers of rignet_keras."""

from rignet_keras.layers.gates import (
    COMBINE_OPTIONS,
    POOLING_OPTIONS,
    FeedbackGate,
    MultiRangeFeedbackGate,
)
from rignet_keras.layers.pass_statistics import PassStatistics

__all__ = [
    "COMBINE_OPTIONS",
    "POOLING_OPTIONS",
    "FeedbackGate",
    "MultiRangeFeedbackGate",
    "PassStatistics",
]
