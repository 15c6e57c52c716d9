"""The train section: `TrainConfig`, how to train (the defaults are the field's PASCAL VOC recipe),
with the choices its fields accept, and the check of a training ui against the model section.

It holds no training code (so that the configuration and `--help` need no TensorFlow): the
trainer (`rignet_keras.training.trainer.Trainer`) reads it.
"""

import dataclasses
import math

from rignet_keras.config.errors import ConfigError
from rignet_keras.config.model import is_baseline, resolved_model_kwargs
from rignet_keras.labels import IGNORE_LABEL

# How a random training ui is drawn (see `rignet_keras.training.task.TrainingModel`).
RANDOM_UI_METHODS = ("auto", "switch", "prefix")
# How the loss is normalised over replicas (see `rignet_keras.training.losses`).
LOSS_NORMALIZATIONS = ("replica", "global")
# The `tf.distribute` strategies (see `rignet_keras.training.strategy.make_strategy`).
STRATEGIES = ("auto", "default", "one_device", "mirrored", "multi_worker")


def check_train_iterations(value):
    """None, an int >= 1, or a (lo, hi) pair with 1 <= lo <= hi -> None or (lo, hi)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        or not 1 <= value[0] <= value[1]
    ):
        raise ValueError(
            "train_iterations must be None, an int >= 1, or (lo, hi) with 1 <= lo <= hi; "
            f"received {value!r}"
        )
    return tuple(value)


@dataclasses.dataclass
class TrainConfig:
    """How to train (the defaults are the field's PASCAL VOC recipe).

    Args:
        steps: total optimizer steps.
        steps_per_epoch: steps between logs, validations and best/last checkpoints.
        batch_size: GLOBAL batch size (split over replicas).
        learning_rate: base rate of the gates and head (and of the backbone times
            `backbone_lr_multiplier`).
        momentum: SGD momentum.
        nesterov: Nesterov momentum.
        weight_decay: L2 coefficient on kernels (coupled, as PyTorch's SGD).
        poly_power: exponent of the poly decay.
        warmup_steps: steps of linear warm-up from `warmup_start_factor` times the rate.
        warmup_start_factor: see above.
        backbone_lr_multiplier: learning-rate factor of blocks B1-B5 (e.g. 0.1 for an
            ImageNet-pretrained backbone).
        train_iterations: None (the model's ui), an int, or (lo, hi) for random-ui training.
        iteration_loss_weights: None (last iteration), "uniform", "linear" or a list.
        loss_normalization: "replica" or "global".
        mixed_precision: False, True (mixed_float16 on GPU, mixed_bfloat16 on CPU) or a policy.
        strategy: "auto", "default", "one_device", "mirrored" or "multi_worker".
        seed: seeds weights initialisation, random-ui draws and (through the data) the order.
        save_freq: steps between resume backups; None for `steps_per_epoch`. The last step is
            backed up too.
        validation_freq: validate every this many epochs.
        monitor: the log value that picks the best checkpoint ("val_mIoU").
        recompute: recompute the recurrent blocks' activations in the backward pass.
        random_ui_method: "auto", "switch" or "prefix" (see `TrainingModel`).
        batch_norm_momentum: sets every batch norm's moving-average momentum (None leaves the
            model's, Keras' 0.99); 0.9 is PyTorch's default, and what short runs need.
        clipnorm: optional gradient clipping by norm.
        jit_compile: XLA; keep False on CPU (slower, and fails with mixed_bfloat16 there).
        steps_per_execution: steps per compiled call.
        ignore_label: the void label.
        tensorboard: write TensorBoard logs (when the `tensorboard` package is installed).
        verbose: Keras `fit` verbosity ("auto", 0, 1, 2).
        deterministic: two runs of the same configuration end with bit-equal weights (oneDNN
            off, one inter-op thread, TensorFlow's op determinism; see
            `rignet_keras.training.determinism`). Slower; the process must be started for it.
    """

    steps: int = 30000
    steps_per_epoch: int = 1000
    batch_size: int = 16
    learning_rate: float = 0.01
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 1e-4
    poly_power: float = 0.9
    warmup_steps: int = 0
    warmup_start_factor: float = 0.1
    backbone_lr_multiplier: float = 1.0
    train_iterations: object = None
    iteration_loss_weights: object = None
    loss_normalization: str = "replica"
    mixed_precision: object = False
    strategy: str = "auto"
    seed: int = 0
    save_freq: int | None = None
    validation_freq: int = 1
    monitor: str = "val_mIoU"
    recompute: bool = False
    random_ui_method: str = "auto"
    batch_norm_momentum: float | None = 0.9
    clipnorm: float | None = None
    jit_compile: bool = False
    steps_per_execution: int = 1
    ignore_label: int = IGNORE_LABEL
    tensorboard: bool = True
    verbose: object = "auto"
    deterministic: bool = False

    def __post_init__(self):
        for name in ("steps", "steps_per_epoch", "batch_size", "validation_freq"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int; received {value!r}")
        if self.save_freq is not None and (
            not isinstance(self.save_freq, int) or self.save_freq < 1
        ):
            raise ValueError(
                f"save_freq must be None or a positive int; received {self.save_freq!r}"
            )
        for name, choices in (
            ("random_ui_method", RANDOM_UI_METHODS),
            ("loss_normalization", LOSS_NORMALIZATIONS),
            ("strategy", STRATEGIES),
        ):
            if getattr(self, name) not in choices:
                raise ValueError(
                    f"{name} must be one of {choices}; received {getattr(self, name)!r}"
                )
        if not isinstance(self.deterministic, bool):
            raise ValueError(
                f"deterministic must be true or false; received {self.deterministic!r}"
            )
        if self.train_iterations is not None:
            self.train_iterations = check_train_iterations(self.train_iterations)
        if self.warmup_steps >= self.steps:
            raise ValueError(
                f"warmup_steps ({self.warmup_steps}) must be smaller than steps ({self.steps})"
            )

    @property
    def num_epochs(self):
        return math.ceil(self.steps / self.steps_per_epoch)

    def to_dict(self):
        return dataclasses.asdict(self)


def check_training_ui(model, train):
    """Refuses a training ui the model cannot honour (`ConfigError` naming the fields): more than
    one iteration for a model without feedback (the FCN has one output whatever the ui), and
    the "prefix" random-ui method for the sequential mode (its ui = k is no prefix of a longer
    unroll)."""
    ui = getattr(train, "train_iterations", None)
    if ui is None:
        return
    if ui[1] > 1 and is_baseline(model):
        raise ConfigError(
            f"train.train_iterations={list(ui)} needs feedback gates: model.feedback_blocks is "
            "None, so every ui is the same feed-forward network; set model.feedback_blocks"
        )
    model_ui = resolved_model_kwargs(model)["num_iterations"]
    if ui[1] > model_ui and not is_baseline(model):
        raise ConfigError(
            f"train.train_iterations={list(ui)} trains up to ui {ui[1]} but "
            f"model.num_iterations is {model_ui}, the largest ui evaluated and exported; raise "
            f"model.num_iterations to {ui[1]} or lower the range"
        )
    mode = resolved_model_kwargs(model)["unroll_mode"]
    if ui[0] < ui[1] and train.random_ui_method == "prefix" and mode == "sequential":
        raise ConfigError(
            "train.random_ui_method='prefix' cannot train model.unroll_mode='sequential' (its "
            "ui = k is not a prefix of a longer unroll); use 'switch' or 'auto'"
        )
