"""rignet-keras: Recurrent Iterative Gating Networks for semantic segmentation (Keras 3).

Importing this package registers every serializable class, so that
`keras.models.load_model("model.keras", safe_mode=True)` rebuilds saved RIGNets.
"""

from rignet_keras.backbones import BACKBONES, build_blocks, load_imagenet_weights
from rignet_keras.layers import FeedbackGate, MultiRangeFeedbackGate
from rignet_keras.models import UNROLL_MODES, RIGNet
from rignet_keras.preprocessing import normalize
from rignet_keras.presets import PRESETS
from rignet_keras.profile import count_macs, profile

__version__ = "0.1.0"

__all__ = [
    "BACKBONES",
    "PRESETS",
    "UNROLL_MODES",
    "FeedbackGate",
    "MultiRangeFeedbackGate",
    "RIGNet",
    "build_blocks",
    "count_macs",
    "load_imagenet_weights",
    "normalize",
    "profile",
]
