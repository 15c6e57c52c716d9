"""rignet-keras: Recurrent Iterative Gating Networks for semantic segmentation (Keras 3).

Importing this package imports Keras and registers every serializable class with it (the
`@keras.saving.register_keras_serializable` decorators of `rignet_keras.models` and
`rignet_keras.tasks` run), so that `keras.models.load_model("model.keras", safe_mode=True)`
rebuilds saved RIGNets, as keras-hub does for its models. It changes nothing else in the
process: no environment variable, no import hook, no file descriptor. Quieting TensorFlow's
log lines is a command's choice (`rignet_cli.tensorflow_logs`).

What runs without TensorFlow lives in two packages beside this one: `rignet_runtime`, the
device runtime of exported graphs (NumPy, Pillow, LiteRT), and `rignet_cli`, the `rignet`
command's launcher (its `--help`, and TensorFlow's log lines quieted before the import).
"""

from rignet_keras.backbones import BACKBONES, build_blocks, load_imagenet_weights  # noqa: E402
from rignet_keras.layers import FeedbackGate, MultiRangeFeedbackGate  # noqa: E402
from rignet_keras.models import (  # noqa: E402
    UNROLL_MODES,
    RecurrentState,
    RIGNet,
    calibrate_batch_norm,
)
from rignet_keras.preprocessing import normalize  # noqa: E402
from rignet_keras.presets import PRESETS  # noqa: E402
from rignet_keras.profile import count_macs, profile  # noqa: E402
from rignet_keras.tasks import (  # noqa: E402
    RIGNetBackbone,
    RIGNetImageSegmenter,
    RIGNetImageSegmenterPreprocessor,
    segmentation_masks,
)
from rignet_keras.version import __version__  # noqa: E402, F401

__all__ = [
    "BACKBONES",
    "PRESETS",
    "UNROLL_MODES",
    "FeedbackGate",
    "MultiRangeFeedbackGate",
    "RIGNet",
    "RIGNetBackbone",
    "RIGNetImageSegmenter",
    "RIGNetImageSegmenterPreprocessor",
    "RecurrentState",
    "build_blocks",
    "calibrate_batch_norm",
    "count_macs",
    "load_imagenet_weights",
    "normalize",
    "profile",
    "segmentation_masks",
]
