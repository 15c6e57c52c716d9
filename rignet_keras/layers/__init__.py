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

# Last: the registration of the package's Keras classes, if importing Keras from this package
# left it waiting (rignet_keras/__init__.py).
from rignet_keras import register_pending  # noqa: E402

register_pending(__name__)
