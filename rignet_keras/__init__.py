"""rignet-keras: Recurrent Iterative Gating Networks for semantic segmentation (Keras 3).

Importing this package makes every serializable class known to Keras, so that
`keras.models.load_model("model.keras", safe_mode=True)` rebuilds saved RIGNets, whichever of
`import rignet_keras` and `import keras` comes first: with Keras already imported, the models are
registered at once; otherwise they are registered the moment Keras finishes importing (a
one-time `sys.meta_path` finder that removes itself), so that `import rignet_keras` alone (the
command line's `--help`, the device runtime) imports neither Keras nor TensorFlow.

Importing it sets no environment variable and touches no file descriptor: TensorFlow's log
lines are the commands' business (`rignet_keras.tensorflow_logs`).
"""

import importlib
import sys

from rignet_keras.import_hooks import ImportHooks
from rignet_keras.lazy import lazy_attributes

__version__ = "0.1.0"

# Public name -> the module that defines it; loaded on first use.
_LAZY = {
    "BACKBONES": "rignet_keras.backbones",
    "build_blocks": "rignet_keras.backbones",
    "load_imagenet_weights": "rignet_keras.backbones",
    "FeedbackGate": "rignet_keras.layers",
    "MultiRangeFeedbackGate": "rignet_keras.layers",
    "RIGNet": "rignet_keras.models",
    "RIGNetBackbone": "rignet_keras.tasks",
    "RIGNetImageSegmenterPreprocessor": "rignet_keras.tasks",
    "RIGNetImageSegmenter": "rignet_keras.tasks",
    "segmentation_masks": "rignet_keras.tasks",
    "RecurrentState": "rignet_keras.models",
    "calibrate_batch_norm": "rignet_keras.models",
    "UNROLL_MODES": "rignet_keras.models",
    "PRESETS": "rignet_keras.presets",
    "normalize": "rignet_keras.preprocessing",
    "count_macs": "rignet_keras.profile",
    "profile": "rignet_keras.profile",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())


_registration_pending = False

# The packages whose import registers every serializable class: the network and its layers
# (`rignet_keras.models`) and the keras-hub shaped tasks (`rignet_keras.tasks`).
_REGISTERING = ("rignet_keras.models", "rignet_keras.tasks")


def _register():
    for name in _REGISTERING:
        importlib.import_module(name)


def _initializing(exclude=None):
    """Names of this package's modules whose import is under way (`exclude` left out)."""
    return [
        name
        for name, module in list(sys.modules.items())
        if (name == __name__ or name.startswith(__name__ + "."))
        and name != exclude
        and getattr(getattr(module, "__spec__", None), "_initializing", False)
    ]


def _register_after(execute):
    """Runs Keras's import, then registers this package's classes (imports `_REGISTERING`).

    When Keras is first imported by one of this package's own modules (`import
    rignet_keras.layers` in a fresh process), the models cannot be imported yet: they import
    names that module has not defined. The registration then waits until that package's import
    ends (`register_pending`, called last by `rignet_keras.layers`, `rignet_keras.backbones` and
    `rignet_keras.training`).
    """
    global _registration_pending
    execute()
    try:
        _register()
    except ImportError:
        if not _initializing():
            raise
        _registration_pending = True


def register_pending(caller):
    """Registers the classes if an import of Keras left them waiting and no module of this
    package but `caller` (the package whose import ends now) is still being imported."""
    global _registration_pending
    if _registration_pending and not _initializing(exclude=caller):
        _registration_pending = False
        _register()


def _install_import_hooks():
    """Registers the classes now if Keras is imported, else when it is. Without Keras (a device
    with only the LiteRT runtime) nothing is registered and the package still imports."""
    if sys.modules.get("keras") is not None:
        _register()
    else:
        ImportHooks({"keras": _register_after}).install()


_install_import_hooks()
