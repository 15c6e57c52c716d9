"""RIGNet models."""

from rignet_keras.models.rignet import NETWORK_MODES, UNROLL_MODES, RIGNet

__all__ = ["NETWORK_MODES", "UNROLL_MODES", "RIGNet"]
