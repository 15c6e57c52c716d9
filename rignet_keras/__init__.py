"""rignet-keras: Recurrent Iterative Gating Networks for semantic segmentation (Keras 3).

Importing this package registers every serializable class, so that
`keras.models.load_model("model.keras", safe_mode=True)` rebuilds saved RIGNets. TensorFlow is
imported only by the parts that need it (data, training, export, profile), so the model itself
runs on any Keras backend and the on-device runtime (`rignet_keras.runtime`, a folder that
also runs copied alone to a device) imports neither TensorFlow nor Keras.
"""

import importlib
import os

# TensorFlow's C++ start-up chatter (CUDA probing, CPU features) drowns the commands' output;
# an explicit setting by the user wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

# Public name -> the module that defines it; loaded on first use.
_LAZY = {
    "BACKBONES": "rignet_keras.backbones",
    "build_blocks": "rignet_keras.backbones",
    "load_imagenet_weights": "rignet_keras.backbones",
    "FeedbackGate": "rignet_keras.layers",
    "MultiRangeFeedbackGate": "rignet_keras.layers",
    "RIGNet": "rignet_keras.models",
    "RecurrentState": "rignet_keras.models",
    "calibrate_batch_norm": "rignet_keras.models",
    "UNROLL_MODES": "rignet_keras.models",
    "PRESETS": "rignet_keras.presets",
    "normalize": "rignet_keras.preprocessing",
    "count_macs": "rignet_keras.profile",
    "profile": "rignet_keras.profile",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rignet_keras' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


def _register_serializable_classes():
    """Keras must know our classes before `load_model`: importing the models registers them.

    On a device with only the LiteRT runtime there is no Keras (or no TensorFlow behind it);
    the on-device runner needs neither, so the package still imports there.
    """
    try:
        import keras  # noqa: F401
    except ImportError:
        return
    importlib.import_module("rignet_keras.models")


_register_serializable_classes()
