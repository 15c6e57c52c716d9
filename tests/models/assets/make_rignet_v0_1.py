"""Writes rignet_v0_1.keras and its expected outputs with rignet-keras 0.1.0 (run once; the
files are committed so that later versions prove they still load what 0.1.0 saved)."""

import pathlib

import keras
import numpy as np

from rignet_keras.models import RIGNet

HERE = pathlib.Path(__file__).resolve().parent

keras.utils.set_random_seed(0)
model = RIGNet(
    num_classes=3,
    backbone="resnet18",
    width_multiplier=0.125,
    unroll_mode="parallel",
    feedback_blocks=(4, 6),
    num_iterations=2,
    name="rignet_v0_1",
)
images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
model(images)
model.save(HERE / "rignet_v0_1.keras")
np.save(HERE / "rignet_v0_1_images.npy", images)
np.save(HERE / "rignet_v0_1_logits.npy", keras.ops.convert_to_numpy(model(images)))
