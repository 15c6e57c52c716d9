"""RIGNet models: the network (`RIGNet`) and the preprocessor of its task, its arguments,
its unroll modes, its recurrent state, and batch-norm calibration."""

from rignet_keras.models.arguments import NETWORK_MODES, UNROLL_MODES
from rignet_keras.models.calibration import calibrate_batch_norm
from rignet_keras.models.preprocessor import RIGNetImageSegmenterPreprocessor
from rignet_keras.models.rignet import RIGNet
from rignet_keras.models.state import GateInput, RecurrentState
from rignet_keras.models.unroll import UnrollMode, unroll_mode_class

__all__ = [
    "NETWORK_MODES",
    "UNROLL_MODES",
    "GateInput",
    "RIGNet",
    "RIGNetImageSegmenterPreprocessor",
    "RecurrentState",
    "UnrollMode",
    "calibrate_batch_norm",
    "unroll_mode_class",
]
