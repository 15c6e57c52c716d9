"""RIGNet models: the network, its arguments, its recurrent state, and batch-norm calibration."""

from rignet_keras.models.arguments import NETWORK_MODES, UNROLL_MODES
from rignet_keras.models.calibration import calibrate_batch_norm
from rignet_keras.models.rignet import RIGNet
from rignet_keras.models.state import GateInput, RecurrentState

__all__ = [
    "NETWORK_MODES",
    "UNROLL_MODES",
    "GateInput",
    "RIGNet",
    "RecurrentState",
    "calibrate_batch_norm",
]
