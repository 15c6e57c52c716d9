"""The keras-hub shaped model API: `RIGNetBackbone` (the network: six blocks, gates, the unroll
driver), `RIGNetImageSegmenter` (the task: preprocessor, training step, presets, export) and its
`RIGNetImageSegmenterPreprocessor`; `segmentation_masks` turns class scores into masks.

The task layer sits above training and export: the segmenter's `fit` is the Trainer's step and
`export` the project's exporter. See docs/MODELS.md.
"""

from rignet_keras.models.preprocessor import RIGNetImageSegmenterPreprocessor
from rignet_keras.tasks.backbone import RIGNetBackbone
from rignet_keras.tasks.segmenter import RIGNetImageSegmenter, segmentation_masks

__all__ = [
    "RIGNetBackbone",
    "RIGNetImageSegmenter",
    "RIGNetImageSegmenterPreprocessor",
    "segmentation_masks",
]
