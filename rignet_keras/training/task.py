"""`TrainingModel`: a Keras model around a RIGNet that owns the training and validation steps.

Its `train_step` is where the choices of the paper's training live, all of them correct under
`tf.distribute` (each replica runs the step on its share of the global batch; the optimizer sums
the gradients over replicas):

- the loss: cross-entropy over valid pixels of the last iteration (the paper), or of every
  iteration with weights (deep supervision, for a model with `return_all_iterations=True`);
- random-ui training: the number of iterations is drawn per step from [lo, hi]. A compiled step
  cannot branch in Python on a value drawn at run time, so either the step holds one branch per
  ui and `tf.switch_case` runs the drawn one ("switch": costs the drawn ui; any unroll mode), or
  it runs ui = hi once and takes the loss of iteration k ("prefix": the output at ui = k IS
  iteration k of a longer parallel unroll; costs hi; no control flow, which synchronised batch
  norm under a multi-replica strategy needs, as its all-reduce cannot sit inside a branch). The
  draw is a stateless function of (seed, step): every replica and worker draws the same ui, and
  a resumed run draws what the first run would have drawn;
- L2 weight decay (PyTorch-style, coupled: added to the loss, so it follows the LR multipliers and
  loss scaling) on kernels (variables of rank >= 2);
- a lower learning rate for the pretrained backbone (blocks B1-B5): their gradients are scaled by
  `backbone_lr_multiplier`, which for SGD with momentum is exactly a per-group learning rate;
- optional recomputation of the recurrent blocks' activations in the backward pass
  (`tf.recompute_grad`), to trade compute for memory at large ui.
"""

import functools
import warnings

import keras
import tensorflow as tf

from rignet_keras.config.train import RANDOM_UI_METHODS, check_train_iterations
from rignet_keras.labels import IGNORE_LABEL
from rignet_keras.layers.pass_statistics import batch_norms
from rignet_keras.models.rignet import RIGNet
from rignet_keras.training.evaluate import logits_per_iteration
from rignet_keras.training.losses import (
    check_loss_normalization,
    normalize_iteration_weights,
    segmentation_loss,
    valid_pixel_mask,
)
from rignet_keras.training.metrics import ConfusionMatrixMetric


def uses_sync_batch_norm(layer):
    """True if `layer` (a model, a block, or a list of them) holds a synchronised batch norm."""
    return any(getattr(norm, "synchronized", False) for norm in batch_norms(layer))


def set_batch_norm_momentum(network, momentum):
    """Sets the moving-average momentum of every batch norm of `network` (before training).

    Keras' default 0.99 needs thousands of steps before the moving statistics that evaluation
    uses settle; PyTorch's default (momentum 0.1 there) is Keras' 0.9. Returns the count.
    """
    norms = batch_norms(network)
    for norm in norms:
        norm.momentum = float(momentum)
    return len(norms)


def recurrent_blocks(network):
    """The blocks of `network` that run in every iteration (B_first .. B6), or [] for none."""
    first = getattr(network, "first_recurrent_block", 7)
    return list(network.blocks[first - 1 :]) if first <= 6 else []


def enable_recompute(network):
    """Turns on `RIGNet.recompute_blocks`: the recurrent blocks' activations are recomputed in
    the backward pass instead of stored (blocks with dropout are left alone; see the model).

    Returns:
        the blocks that will be recomputed.
    """
    network.recompute_blocks = True
    return [b for b in recurrent_blocks(network) if network.recomputable(b)]


# The start of the warning Keras gives when a dataset ends before the steps it expected.
RAN_OUT_OF_DATA = "Your input ran out of data"


@keras.saving.register_keras_serializable(package="rignet_keras")
class TrainingModel(keras.Model):
    """Trains and validates a RIGNet with `compile` / `fit` / `evaluate`.

    Args:
        network: the `RIGNet` (or any Keras model mapping images to logits, or to a list of
            per-iteration logits, with `num_classes`).
        train_iterations: None (the network's `num_iterations`), an int, or (lo, hi): ui drawn
            uniformly per step in [lo, hi] (random-ui training).
        iteration_loss_weights: None (loss on the last iteration: the paper), "uniform",
            "linear" or a list of weights for iterations 1..ui (deep supervision; needs a
            network built with `return_all_iterations=True`). With random ui, a list is cut to
            the drawn ui and renormalised.
        eval_iterations: ui for validation; None for the network's `num_iterations`.
        backbone_lr_multiplier: float; the gradients of blocks B1-B5 are scaled by it.
        weight_decay: float, L2 coefficient on kernels (0 for none).
        loss_normalization: "replica" or "global" (see `rignet_keras.training.losses`).
        ignore_label: the void label. Default 255.
        seed: int, seeds the stateless draws of random-ui training.
        recompute: True to recompute the recurrent blocks in the backward pass.
        random_ui_method: "switch", "prefix" or "auto" (default: "prefix" when synchronised
            batch norm runs under a multi-replica strategy, else "switch"); see the module
            docstring.
        per_ui_metrics: True to report, in validation, the mIoU at every ui from 1 to the
            network's `num_iterations` ("mIoU_ui<k>", from one unroll on the driver) beside
            "loss" and "mIoU" (at `eval_iterations`). Needs a network with `num_iterations`.

    Call: `model(images, training=...)` is the network's call.

    Example:
    >>> net = RIGNet(num_classes=3, backbone="resnet18", num_iterations=2)
    >>> task = TrainingModel(net, train_iterations=(1, 3))
    >>> task.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9))
    >>> # task.fit(dataset_of_images_and_masks, steps_per_epoch=..., epochs=...)
    """

    def __init__(
        self,
        network,
        train_iterations=None,
        iteration_loss_weights=None,
        eval_iterations=None,
        backbone_lr_multiplier=1.0,
        weight_decay=0.0,
        loss_normalization="replica",
        ignore_label=IGNORE_LABEL,
        seed=0,
        recompute=False,
        random_ui_method="auto",
        per_ui_metrics=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.network = network
        self.num_classes = network.num_classes
        self.train_iterations = check_train_iterations(train_iterations)
        self.iteration_loss_weights = iteration_loss_weights
        self.eval_iterations = eval_iterations
        self.backbone_lr_multiplier = float(backbone_lr_multiplier)
        self.weight_decay = float(weight_decay)
        self.loss_normalization = check_loss_normalization(loss_normalization)
        self.ignore_label = ignore_label
        self.seed = int(seed)
        self.recompute = bool(recompute)
        if random_ui_method not in RANDOM_UI_METHODS:
            raise ValueError(
                f"random_ui_method must be one of {RANDOM_UI_METHODS}; "
                f"received {random_ui_method!r}"
            )
        self.random_ui_method = random_ui_method
        returns_all = bool(getattr(network, "return_all_iterations", False))
        if iteration_loss_weights is not None and not returns_all:
            raise ValueError(
                "iteration_loss_weights (deep supervision) needs a network that returns every "
                "iteration: build the RIGNet with return_all_iterations=True (not available in "
                "'sequential' mode)"
            )
        if isinstance(iteration_loss_weights, (list, tuple)):
            hi = self.train_iterations[1] if self.train_iterations else network.num_iterations
            normalize_iteration_weights(iteration_loss_weights, hi)  # checks the length
        if self.recompute:
            enable_recompute(network)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.miou = ConfusionMatrixMetric(self.num_classes, ignore_label, name="mIoU")
        self.per_ui_metrics = bool(per_ui_metrics)
        self.ui_mious = {}
        if self.per_ui_metrics:
            if not hasattr(network, "num_iterations"):
                raise ValueError("per_ui_metrics=True needs a network with num_iterations")
            self.ui_mious = {
                k: ConfusionMatrixMetric(self.num_classes, ignore_label, name=f"mIoU_ui{k}")
                for k in range(1, network.num_iterations + 1)
            }
        self._backbone_ids = None

    # ------------------------------------------------------------------------------------

    def build(self, input_shape):
        if not self.network.built:
            self.network.build(input_shape)
        self.built = True

    def call(self, images, training=None):
        return self.network(images, training=training)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras (3.15, TF backend) builds compiled losses and metrics symbolically at the start
        # of fit() under a strategy, from a batch averaged with `strategy.reduce(MEAN)`; that
        # reduce fails under MultiWorkerMirroredStrategy. This model has no compiled loss or
        # metrics, and Trainer.build builds it and its optimizer beforehand: nothing to build.
        if self.built and self.optimizer is not None and self.optimizer.built:
            return None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    @staticmethod
    def _logs(logs):
        # Keras (3.15, TF backend) reduces step outputs under MultiWorkerMirroredStrategy with
        # `strategy.reduce("MEAN", v, axis=0)`, which fails on scalars: give it shape (1,).
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            return {k: tf.reshape(v, [1]) for k, v in logs.items()}
        return logs

    @property
    def metrics(self):
        return [self.loss_tracker, self.miou, *self.ui_mious.values()]

    def iteration_choices(self):
        """The ui values that training draws from (one value without random-ui training)."""
        if self.train_iterations is None:
            k = getattr(self.network, "num_iterations", None)
            return [k]
        lo, hi = self.train_iterations
        return list(range(lo, hi + 1))

    def _loss_at(self, images, labels, num_iterations, denominator):
        if num_iterations is None:
            outputs = self.network(images, training=True)
        else:
            outputs = self.network(images, training=True, num_iterations=num_iterations)
        weights = self.iteration_loss_weights
        if isinstance(outputs, (list, tuple)) and isinstance(weights, (list, tuple)):
            weights = weights[: len(outputs)]
        return segmentation_loss(labels, outputs, weights, self.ignore_label, denominator)

    def resolved_random_ui_method(self):
        """ "switch" or "prefix", as `random_ui_method` and the strategy decide."""
        method = self.random_ui_method
        can_step = isinstance(self.network, RIGNet) and self.network.can_step
        if method == "auto":
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            sync = uses_sync_batch_norm(getattr(self.network, "blocks", []))
            method = "prefix" if replicas > 1 and sync and can_step else "switch"
        if method == "prefix" and not can_step:
            raise ValueError(
                "random_ui_method='prefix' needs a RIGNet that can step (RIGNet.can_step: a "
                "parallel or network-wide mode with feedback; the sequential mode's ui = k is "
                "not a prefix of a longer unroll); use 'switch'"
            )
        return method

    def _prefix_loss(self, images, labels, index, denominator):
        """One pass at ui = hi on the driver; the loss of the drawn ui (weights select it: no
        control flow)."""
        choices = self.iteration_choices()
        outputs = logits_per_iteration(self.network, images, range(1, choices[-1] + 1), True)
        losses = []
        for k in choices:
            logits = [outputs[t] for t in range(1, k + 1)]
            weights = self.iteration_loss_weights
            if weights is None:
                logits = logits[-1]
            elif isinstance(weights, (list, tuple)):
                weights = weights[:k]
            losses.append(
                segmentation_loss(labels, logits, weights, self.ignore_label, denominator)
            )
        select = tf.one_hot(index, len(choices), dtype=tf.float32)
        return tf.reduce_sum(select * tf.stack(losses))

    def sample_iteration_index(self, step):
        """The branch index drawn at optimizer step `step` (a stateless function of the seed)."""
        n = len(self.iteration_choices())
        seed = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(step, tf.int64)])
        return tf.random.stateless_uniform([], seed=seed, minval=0, maxval=n, dtype=tf.int32)

    def _l2_penalty(self):
        kernels = [v for v in self.trainable_variables if len(v.shape) >= 2]
        if not self.weight_decay or not kernels:
            return tf.constant(0.0, tf.float32)
        total = tf.add_n([tf.reduce_sum(tf.square(tf.cast(v.value, tf.float32))) for v in kernels])
        return 0.5 * self.weight_decay * total

    def _gradient_multipliers(self, variables):
        if self._backbone_ids is None:
            blocks = getattr(self.network, "blocks", [])[:5]
            self._backbone_ids = {id(v) for b in blocks for v in b.trainable_variables}
        m = self.backbone_lr_multiplier
        return [m if id(v) in self._backbone_ids else 1.0 for v in variables]

    def train_step(self, data):
        images, labels = data[0], tf.cast(data[1], tf.int32)
        strategy = tf.distribute.get_strategy()
        num_replicas = strategy.num_replicas_in_sync
        valid = valid_pixel_mask(labels, self.num_classes, self.ignore_label)
        denominator = tf.reduce_sum(tf.cast(valid, tf.float32))
        context = tf.distribute.get_replica_context()
        if self.loss_normalization == "global" and context is not None and num_replicas > 1:
            total = context.all_reduce(tf.distribute.ReduceOp.SUM, denominator)
            denominator = total / num_replicas
        choices = self.iteration_choices()
        with tf.GradientTape() as tape:
            if len(choices) == 1:
                loss = self._loss_at(images, labels, choices[0], denominator)
            elif self.resolved_random_ui_method() == "prefix":
                index = self.sample_iteration_index(self.optimizer.iterations)
                loss = self._prefix_loss(images, labels, index, denominator)
            else:
                index = self.sample_iteration_index(self.optimizer.iterations)
                branches = [
                    functools.partial(self._loss_at, images, labels, k, denominator)
                    for k in choices
                ]
                loss = tf.switch_case(index, branches)
            total_loss = loss + self._l2_penalty()
            # Standard Keras scaling: the optimizer sums the replicas' gradients.
            scaled = total_loss / num_replicas if num_replicas > 1 else total_loss
            scaled = self.optimizer.scale_loss(scaled)
        variables = self.trainable_variables
        gradients = tape.gradient(scaled, variables)
        multipliers = self._gradient_multipliers(variables)
        pairs = []
        for g, v, m in zip(gradients, variables, multipliers, strict=True):
            if g is None:
                continue
            pairs.append((g * m if m != 1.0 else g, v))
        if len(pairs) < len(variables):
            missing = [v.path for g, v in zip(gradients, variables, strict=True) if g is None]
            warnings.warn(
                f"{len(missing)} variables get no gradient at ui={choices}: {missing[:4]}...",
                stacklevel=2,
            )
        self.optimizer.apply_gradients(pairs)
        self.loss_tracker.update_state(loss)
        return self._logs({"loss": self.loss_tracker.result()})

    def evaluate(self, *args, **kwargs):
        """`keras.Model.evaluate`; without `steps`, the end of the data is the end of the
        evaluation, so Keras' "Your input ran out of data" warning (which it gives for a
        dataset of unknown length, one that skips bad samples) is left out. With `steps`, an
        early end is still warned about."""
        if kwargs.get("steps") is not None:
            return super().evaluate(*args, **kwargs)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=RAN_OUT_OF_DATA, category=UserWarning)
            return super().evaluate(*args, **kwargs)

    def test_step(self, data):
        images, labels = data[0], tf.cast(data[1], tf.int32)
        if self.ui_mious:
            return self._per_ui_test_step(images, labels)
        if self.eval_iterations is None:
            outputs = self.network(images, training=False)
        else:
            outputs = self.network(images, training=False, num_iterations=self.eval_iterations)
        logits = outputs[-1] if isinstance(outputs, (list, tuple)) else outputs
        loss = segmentation_loss(labels, logits, None, self.ignore_label)
        self.loss_tracker.update_state(loss)
        self.miou.update_state(labels, logits)
        return self._logs({"loss": self.loss_tracker.result(), "mIoU": self.miou.result()})

    def _per_ui_test_step(self, images, labels):
        """`test_step` with `per_ui_metrics`: one unroll gives every ui's logits."""
        eval_ui = self.eval_iterations or self.network.num_iterations
        per_ui = logits_per_iteration(self.network, images, [*self.ui_mious, eval_ui])
        loss = segmentation_loss(labels, per_ui[eval_ui], None, self.ignore_label)
        self.loss_tracker.update_state(loss)
        self.miou.update_state(labels, per_ui[eval_ui])
        logs = {"loss": self.loss_tracker.result(), "mIoU": self.miou.result()}
        for k, metric in self.ui_mious.items():
            metric.update_state(labels, per_ui[k])
            logs[metric.name] = metric.result()
        return self._logs(logs)

    def predict_step(self, data):
        images = data[0] if isinstance(data, (list, tuple)) else data
        return self.network(images, training=False)

    def get_config(self):
        return {
            "name": self.name,
            "network": keras.saving.serialize_keras_object(self.network),
            "train_iterations": self.train_iterations,
            "iteration_loss_weights": self.iteration_loss_weights,
            "eval_iterations": self.eval_iterations,
            "backbone_lr_multiplier": self.backbone_lr_multiplier,
            "weight_decay": self.weight_decay,
            "loss_normalization": self.loss_normalization,
            "ignore_label": self.ignore_label,
            "seed": self.seed,
            "recompute": self.recompute,
            "random_ui_method": self.random_ui_method,
            "per_ui_metrics": self.per_ui_metrics,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["network"] = keras.saving.deserialize_keras_object(config["network"])
        if isinstance(config.get("train_iterations"), list):
            config["train_iterations"] = tuple(config["train_iterations"])
        return cls(**config)
