"""Evaluation for every ui: mIoU, pAcc, mAcc and per-class IoU from one confusion matrix per ui.

The anytime curve (a score against ui) costs one forward pass at the largest ui for a model that
can step (`RIGNet.can_step`: the parallel and network-wide unroll modes): iteration t of a run
with ui = K is exactly the output at ui = t (the state after t passes does not depend on later
passes), so every prefix comes for free. The sequential mode is run once per ui.

Distributed-safe: each replica computes the confusion matrices of its share of a batch, and
`strategy.reduce(SUM)` adds them; the matrices are accumulated in float64 (exact counts).
"""

import dataclasses
import os
import time

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from rignet_keras.labels import IGNORE_LABEL
from rignet_keras.models.arguments import check_num_iterations
from rignet_keras.models.rignet import RIGNet
from rignet_keras.ops import resize_bilinear, spatial_size
from rignet_keras.training.metrics import confusion_matrix, segmentation_scores
from rignet_keras.training.plots import plot_anytime
from rignet_runtime.atomic import write_json


def model_iterations(model):
    """The model's default ui (1 for a model without iterations)."""
    return int(getattr(model, "num_iterations", 1) or 1)


def logits_per_iteration(model, images, iterations, training=False):
    """Float32 logits at the input size for each ui in `iterations`: {ui: (B, H, W, C)}.

    A `RIGNet` runs on its driver (`RIGNet.iterate`): once at the largest ui when it can step
    (iteration t of a run at ui = K is the output at ui = t), else once per ui.

    Args:
        model: a `RIGNet` (any unroll mode), or any Keras model mapping images to logits (then
            `iterations` must be [None] or [1]).
        images: normalised images (B, H, W, 3).
        iterations: the ui values wanted.
        training: call mode.
    """
    iterations = sorted(set(iterations))
    if not isinstance(model, RIGNet):
        if hasattr(model, "num_iterations"):
            outputs = {k: model(images, training=training, num_iterations=k) for k in iterations}
        else:
            outputs = dict.fromkeys(iterations, model(images, training=training))
        return {
            k: tf.cast(out[-1] if isinstance(out, (list, tuple)) else out, tf.float32)
            for k, out in outputs.items()
        }
    for k in iterations:
        check_num_iterations(k, "iterations")
    size = spatial_size(images)
    x = tf.cast(images, model.compute_dtype)
    if model.can_step:
        outputs = {}
        for t, state in enumerate(model.iterate(x, iterations[-1], training), 1):
            if t in iterations:
                outputs[t] = model.upsample(state.logits, size)
        return outputs
    return {
        k: model.upsample(list(model.iterate(x, k, training))[-1].logits, size) for k in iterations
    }


def predict_probabilities(model, images, iterations, flip=False, scales=(1.0,)):
    """Class probabilities at the input size per ui, averaged over scales and flips.

    Args:
        model, images, iterations: as `logits_per_iteration`.
        flip: also run the horizontally flipped images (flipped back before averaging).
        scales: resize factors of the input (multi-scale testing); (1.0,) for single scale.

    Returns:
        {ui: float32 (B, H, W, C)} softmax probabilities (logits at a single scale without
        flip are turned into probabilities too, so argmax is the same either way).
    """
    size = spatial_size(images)
    total = None
    for scale in scales:
        x = images
        if scale != 1.0:
            h = tf.cast(tf.round(tf.cast(size[0], tf.float32) * scale), tf.int32)
            w = tf.cast(tf.round(tf.cast(size[1], tf.float32) * scale), tf.int32)
            x = resize_bilinear(images, (h, w))
        variants = [(x, False)] + ([(tf.reverse(x, axis=[2]), True)] if flip else [])
        for inputs, flipped in variants:
            logits = logits_per_iteration(model, inputs, iterations)
            for k, y in logits.items():
                if flipped:
                    y = tf.reverse(y, axis=[2])
                if scale != 1.0:
                    y = tf.cast(resize_bilinear(y, size), tf.float32)
                p = tf.nn.softmax(y, axis=-1)
                if total is None:
                    total = {}
                total[k] = p if k not in total else total[k] + p
    n = len(scales) * (2 if flip else 1)
    return {k: v / n for k, v in total.items()}


@dataclasses.dataclass
class EvaluationResult:
    """Scores per ui, from one confusion matrix per ui over the whole set.

    Attributes:
        scores: {ui: dict of `segmentation_scores`}.
        matrices: {ui: (C, C) float64 confusion matrix}.
        num_images: images evaluated.
        flip, scales: the test-time augmentation used.
        seconds: wall time.
        info: extra JSON-able facts (dataset, model, ...).
    """

    scores: dict
    matrices: dict
    num_images: int
    flip: bool = False
    scales: tuple = (1.0,)
    seconds: float = 0.0
    info: dict = dataclasses.field(default_factory=dict)

    @property
    def iterations(self):
        return sorted(self.scores)

    def curve(self, score="mIoU"):
        """[(ui, value)] for the anytime plot."""
        return [(k, self.scores[k][score]) for k in self.iterations]

    def to_dict(self):
        return {
            "num_images": self.num_images,
            "flip": self.flip,
            "scales": list(self.scales),
            "seconds": round(self.seconds, 2),
            "iterations": self.iterations,
            "scores": {str(k): v for k, v in self.scores.items()},
            "confusion_matrices": {
                str(k): m.astype(np.int64).tolist() for k, m in self.matrices.items()
            },
            "info": self.info,
        }

    def table(self, class_names=None):
        """A short text table: ui, mIoU, pAcc, mAcc (percent)."""
        lines = ["  ui    mIoU    pAcc    mAcc"]
        for k in self.iterations:
            s = self.scores[k]
            lines.append(
                f"{k:4d}  {100 * s['mIoU']:6.2f}  {100 * s['pAcc']:6.2f}  {100 * s['mAcc']:6.2f}"
            )
        return "\n".join(lines)

    def save(self, output_dir, plot=True, title=None):
        """Writes `results.json` (and `anytime_miou.png`) into `output_dir`; returns the paths."""
        os.makedirs(output_dir, exist_ok=True)
        path = os.path.join(output_dir, "results.json")
        write_json(path, self.to_dict())
        paths = {"json": path}
        if plot:
            paths["plot"] = plot_anytime(
                {title or "model": self.curve()}, os.path.join(output_dir, "anytime_miou.png")
            )
        return paths


def evaluate(
    model,
    dataset,
    num_classes=None,
    *,
    iterations=None,
    flip=False,
    scales=(1.0,),
    strategy=None,
    class_names=None,
    ignore_label=IGNORE_LABEL,
    max_batches=None,
    progress=True,
    info=None,
):
    """Evaluates `model` on `dataset` for every ui in `iterations`.

    Args:
        model: a `RIGNet` (or a Keras model mapping images to logits).
        dataset: finite `tf.data.Dataset` of (images, masks[, ids]); masks int (B, H, W) with 255
            = void, at the images' size.
        num_classes: default `model.num_classes`.
        iterations: the ui values; default 1..model's ui (the anytime curve).
        flip: horizontal-flip testing.
        scales: multi-scale testing, e.g. (0.75, 1.0, 1.25).
        strategy: a `tf.distribute.Strategy` to spread batches over replicas; None for the
            current one.
        class_names: for the per-class entries of the scores.
        ignore_label: the void label.
        max_batches: evaluate only this many batches.
        progress: show a tqdm progress bar.
        info: extra JSON-able facts for the result.

    Returns:
        `EvaluationResult`.
    """
    model_classes = getattr(model, "num_classes", None)
    num_classes = num_classes or model_classes
    if model_classes is not None and model_classes != num_classes:
        raise ValueError(
            f"the model predicts {model_classes} classes; the data has {num_classes}: an mIoU "
            "over classes the model cannot predict means nothing"
        )
    if iterations is None:
        iterations = list(range(1, model_iterations(model) + 1))
    iterations = sorted(
        {
            check_num_iterations(int(k) if isinstance(k, np.integer) else k, "iterations")
            for k in iterations
        }
    )
    scales = tuple(float(s) for s in scales)
    if not scales or min(scales) <= 0:
        raise ValueError(f"scales must be positive; received {scales!r}")
    strategy = strategy or tf.distribute.get_strategy()

    @tf.function(reduce_retracing=True, autograph=False)
    def replica_step(images, masks):
        probs = predict_probabilities(model, images, iterations, flip, scales)
        matrices = [
            confusion_matrix(masks, tf.argmax(probs[k], axis=-1), num_classes, ignore_label)
            for k in iterations
        ]
        return tf.stack(matrices), tf.shape(images)[0]

    if max_batches is not None:
        dataset = dataset.take(max_batches)
    distributed = strategy.num_replicas_in_sync > 1
    if distributed:
        dataset = strategy.experimental_distribute_dataset(dataset)
    total = np.zeros((len(iterations), num_classes, num_classes), np.float64)
    num_images = 0
    t0 = time.time()
    bar = tqdm(desc="evaluate", unit="batch", disable=not progress, total=_cardinality(dataset))
    for batch in dataset:
        images, masks = batch[0], batch[1]
        if isinstance(masks, tf.RaggedTensor):
            raise ValueError("evaluate needs dense masks: use eval_mode='pad' or batch size 1")
        if distributed:
            per_replica = strategy.run(replica_step, args=(images, masks))
            matrices = strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica[0], axis=None)
            count = strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica[1], axis=None)
        else:
            matrices, count = replica_step(images, masks)
        total += matrices.numpy()
        num_images += int(count)
        bar.update(1)
    bar.close()
    scores = {k: segmentation_scores(total[i], class_names) for i, k in enumerate(iterations)}
    return EvaluationResult(
        scores=scores,
        matrices={k: total[i] for i, k in enumerate(iterations)},
        num_images=num_images,
        flip=flip,
        scales=scales,
        seconds=time.time() - t0,
        info=dict(info or {}),
    )


def _cardinality(dataset):
    try:
        n = int(dataset.cardinality())
    except (AttributeError, TypeError):
        return None
    return n if n >= 0 else None
