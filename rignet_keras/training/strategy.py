"""`tf.distribute` strategy and mixed-precision choices for training and evaluation.

- A `TF_CONFIG` that describes a cluster of more than one task: `MultiWorkerMirroredStrategy`
  (create it before any other TensorFlow op in the process).
- Several visible GPUs: `MirroredStrategy` over all of them.
- One GPU: `OneDeviceStrategy("/gpu:0")`; CPU only: the default strategy.

Batch sizes are global: each replica gets `batch_size / num_replicas_in_sync` examples.
"""

import json
import os
import tempfile

import keras
import tensorflow as tf

from rignet_keras.config.train import STRATEGIES


def cluster_spec_from_env():
    """The cluster dict of `TF_CONFIG` (None if unset or a single task) and this task's
    (type, index)."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return None, (None, 0)
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON: {error}; received {raw!r}") from error
    cluster = config.get("cluster") or {}
    task = config.get("task") or {}
    num_tasks = sum(len(v) for v in cluster.values())
    return (cluster if num_tasks > 1 else None), (task.get("type"), int(task.get("index", 0)))


def build_strategy(kind="auto"):
    """A `tf.distribute.Strategy`.

    Args:
        kind: "auto" (as the module docstring says), "default", "one_device" (the first GPU, or
            the CPU), "mirrored" (all local GPUs, or the CPU) or "multi_worker" (needs TF_CONFIG).

    Returns:
        the strategy.
    """
    if kind not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}; received {kind!r}")
    cluster, _ = cluster_spec_from_env()
    if kind == "multi_worker" or (kind == "auto" and cluster is not None):
        if cluster is None:
            raise ValueError("strategy='multi_worker' needs a TF_CONFIG with a cluster of tasks")
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if kind == "mirrored" or (kind == "auto" and len(gpus) > 1):
        return tf.distribute.MirroredStrategy()
    if kind == "one_device" or (kind == "auto" and len(gpus) == 1):
        return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
    return tf.distribute.get_strategy()


def is_chief(strategy=None):
    """True unless this process is a non-chief worker of a multi-worker cluster.

    The chief is the task of type "chief", or worker 0 when the cluster has no chief.
    """
    cluster, (task_type, task_index) = cluster_spec_from_env()
    if cluster is None:
        return True
    if "chief" in cluster:
        return task_type == "chief"
    return task_type in (None, "worker") and task_index == 0


def worker_dir(output_dir, strategy=None):
    """Where this worker writes: `output_dir` for the chief, a private temporary folder for the
    other workers (they must still write, as every worker takes part in saving distributed
    variables, but their files are thrown away)."""
    if is_chief(strategy):
        return output_dir
    _, (task_type, task_index) = cluster_spec_from_env()
    return tempfile.mkdtemp(prefix=f"rignet-{task_type}{task_index}-")


def mixed_precision_policy(enabled):
    """The Keras dtype policy name for `enabled`: "float32", or "mixed_float16" when a GPU is
    visible, "mixed_bfloat16" on CPU (oneDNN uses AMX/AVX-512 bf16 there)."""
    if not enabled:
        return "float32"
    if isinstance(enabled, str):
        if enabled not in ("float32", "mixed_float16", "mixed_bfloat16"):
            raise ValueError(
                "mixed_precision must be a bool or one of 'float32', 'mixed_float16', "
                f"'mixed_bfloat16'; received {enabled!r}"
            )
        return enabled
    return "mixed_float16" if tf.config.list_logical_devices("GPU") else "mixed_bfloat16"


class dtype_policy_scope:
    """Context manager: sets the global Keras dtype policy, and restores the previous one."""

    def __init__(self, policy):
        self.policy = policy
        self.previous = None

    def __enter__(self):
        self.previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(self.policy)
        return self

    def __exit__(self, *exc):
        keras.config.set_dtype_policy(self.previous)
        return False
