"""One worker of the MultiWorkerMirroredStrategy test (run as a subprocess with TF_CONFIG set).

Usage: python mwms_worker.py OUTPUT_DIR RESULT.npz [TFDS_DATA_DIR]

With TFDS_DATA_DIR (holding a prepared rignet_synthetic), the worker also reads that dataset's
train split through `strategy.distribute_datasets_from_function` and `build_dataset(...,
input_context=...)`, and records the ids it read (TFDS gives each worker its own files).
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from rignet_keras.training.strategy import build_strategy, is_chief  # noqa: E402

# The strategy must exist before any other TensorFlow op in the process.
strategy = build_strategy("auto")

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from rignet_keras import RIGNet  # noqa: E402
from rignet_keras.config import TrainConfig  # noqa: E402
from rignet_keras.training.trainer import Trainer  # noqa: E402
from tests.harness import TRAIN_CLASSES, learnable_arrays, trainable_blocks  # noqa: E402


def read_tfds_ids(data_dir):
    """The ids this worker reads of rignet_synthetic's train split under the strategy."""
    from rignet_keras.data import build_dataset

    def dataset_fn(input_context):
        return build_dataset(
            "tfds:rignet_synthetic",
            "train",
            data_dir=data_dir,
            batch_size=10,
            training=False,
            eval_mode="pad",
            return_ids=True,
            input_context=input_context,
        )

    ids = []
    for _, _, batch_ids in strategy.distribute_datasets_from_function(dataset_fn):
        for local in strategy.experimental_local_results(batch_ids):
            ids.extend(i.decode() for i in local.numpy())
    return ids


def main(output_dir, result_path, tfds_dir=None):
    assert isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy), type(strategy)
    config = TrainConfig(
        steps=3,
        steps_per_epoch=3,
        batch_size=4,
        learning_rate=0.05,
        train_iterations=(1, 2),
        loss_normalization="global",
        tensorboard=False,
        verbose=0,
        weight_decay=1e-4,
    )
    trainer = Trainer(config, output_dir, strategy=strategy)
    # Synchronised batch norm: the batch statistics (and so the moving averages, which are not
    # variables the optimizer all-reduces) are the same on every worker.
    trainer.build(
        lambda: RIGNet(
            TRAIN_CLASSES, backbone=trainable_blocks(sync_batch_norm=True), num_iterations=2
        ),
        (None, 32, 32, 3),
    )
    images, masks = learnable_arrays(16)
    data = tf.data.Dataset.from_tensor_slices((images, masks)).batch(4)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    result = trainer.fit(data.with_options(options), resume=False)
    with strategy.scope():
        method = trainer.task.resolved_random_ui_method()
    weights = {f"w{i}": w for i, w in enumerate(trainer.network.get_weights())}
    extra = {"tfds_ids": np.array(read_tfds_ids(tfds_dir))} if tfds_dir else {}
    np.savez(
        result_path,
        **weights,
        **extra,
        step=result.final_step,
        chief=is_chief(),
        method=method,
        replicas=strategy.num_replicas_in_sync,
        loss=result.history.get("loss", [np.nan])[-1],
    )


if __name__ == "__main__":
    main(*sys.argv[1:4])
