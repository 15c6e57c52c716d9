"""One training process of the kill tests (tests/training/test_faults.py).

Usage: python fault_worker.py OUTPUT_DIR RESULT.npz

Trains a tiny RIGNet for 3 epochs of 4 steps (backups every 2 steps, validation every epoch) on
CPU, with fixed seeds and deterministic ops, resuming from OUTPUT_DIR's backup when there is one.
`RIGNET_FAULT_POINT=<point>:<step>` (see `rignet_keras.training.callbacks.fault_point`) kills it
with SIGKILL at that moment. A run that ends writes the network's final weights to RESULT.npz.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["CUDA_VISIBLE_DEVICES"] = ""

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.config.threading.set_inter_op_parallelism_threads(1)
tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.experimental.enable_op_determinism()

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from rignet_keras import RIGNet  # noqa: E402
from rignet_keras.training.trainer import TrainConfig, Trainer  # noqa: E402
from tests.harness import TRAIN_CLASSES, learnable_dataset, trainable_blocks  # noqa: E402

CONFIG = dict(
    steps=12,
    steps_per_epoch=4,
    save_freq=2,
    batch_size=4,
    learning_rate=0.05,
    warmup_steps=2,
    train_iterations=(1, 2),
    weight_decay=1e-4,
    tensorboard=False,
    verbose=0,
    seed=0,
)


def main(output_dir, result_path):
    trainer = Trainer(TrainConfig(**CONFIG), output_dir)
    trainer.build(
        lambda: RIGNet(TRAIN_CLASSES, backbone=trainable_blocks(dropout=0.1), num_iterations=2),
        (None, 32, 32, 3),
    )
    # 6 training batches: the stream wraps around within the run.
    result = trainer.fit(learnable_dataset(num=24), val_data=learnable_dataset(num=8, seed=1))
    weights = {v.path: np.asarray(v.numpy()) for v in trainer.network.weights}
    np.savez(result_path, final_step=result.final_step, start_step=result.start_step, **weights)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
