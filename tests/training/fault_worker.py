"""One training process of the kill tests (tests/training/test_faults.py).

Usage: python fault_worker.py OUTPUT_DIR RESULT.npz [MODEL]

Trains a RIGNet for 3 epochs of 4 steps (backups every 2 steps, validation every epoch) on CPU
with `deterministic=True` (the test starts it with oneDNN off), resuming from OUTPUT_DIR's
backup when there is one. MODEL is "tiny" (default: a small custom backbone, ui 1-2 drawn per
step, 32x32 images) or "resnet18" (a ResNet-18 RIGNet Pu<6..4> trained at ui 3, 64x64 images).
`RIGNET_FAULT_POINT=<point>:<step>` (see `rignet_keras.training.faults.fault_point`) kills it
with SIGKILL at that moment. A run that ends writes the network's final weights to RESULT.npz.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["CUDA_VISIBLE_DEVICES"] = ""

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from rignet_keras import RIGNet  # noqa: E402
from rignet_keras.config import TrainConfig  # noqa: E402
from rignet_keras.training.trainer import Trainer  # noqa: E402
from tests.harness import TRAIN_CLASSES, learnable_dataset, trainable_blocks  # noqa: E402

CONFIG = dict(
    steps=12,
    steps_per_epoch=4,
    save_freq=2,
    batch_size=4,
    learning_rate=0.05,
    warmup_steps=2,
    weight_decay=1e-4,
    tensorboard=False,
    verbose=0,
    seed=0,
    deterministic=True,
)

# model name -> (network, image side, train_iterations)
MODELS = {
    "tiny": (
        lambda: RIGNet(TRAIN_CLASSES, backbone=trainable_blocks(dropout=0.1), num_iterations=2),
        32,
        (1, 2),
    ),
    "resnet18": (
        lambda: RIGNet(
            TRAIN_CLASSES, backbone="resnet18", feedback_blocks=(4, 6), num_iterations=3
        ),
        64,
        None,
    ),
}


def main(output_dir, result_path, model="tiny"):
    network, size, train_iterations = MODELS[model]
    trainer = Trainer(TrainConfig(**CONFIG, train_iterations=train_iterations), output_dir)
    trainer.build(network, (None, size, size, 3))
    # 6 training batches: the stream wraps around within the run.
    result = trainer.fit(
        learnable_dataset(num=24, size=size),
        val_data=learnable_dataset(num=8, size=size, seed=1),
    )
    weights = {v.path: np.asarray(v.numpy()) for v in trainer.network.weights}
    np.savez(result_path, final_step=result.final_step, start_step=result.start_step, **weights)


if __name__ == "__main__":
    main(*sys.argv[1:4])
