"""Batch-norm calibration: settles a RIGNet's moving statistics on a few batches of images.

A randomly initialised or freshly re-configured network has moving statistics that fit no data;
an export, a benchmark or a parity test on it compares near-uniform predictions. Calibration runs
the driver (`RIGNet.iterate`) in training mode, so that every batch norm, and the gated passes'
`PassStatistics` of `recurrent_batch_norm="gated_passes"`, takes the statistics of the passes of
its kind; trainable weights are not touched (no gradient is taken).
"""

from keras import ops

from rignet_keras.layers.pass_statistics import batch_norms
from rignet_keras.models.arguments import check_num_iterations


def _batches(images):
    """One batch (an array or tensor of rank 4) or an iterable of them -> an iterator."""
    if hasattr(images, "shape") and len(images.shape) == 4:
        return iter([images])
    try:
        return iter(images)
    except TypeError:
        raise ValueError(
            "images must be a batch (B, H, W, 3) or an iterable of batches; received "
            f"{type(images).__name__}"
        ) from None


def calibrate_batch_norm(model, images, num_iterations=None, steps=None):
    """Sets every batch norm's moving statistics to the mean of the batch statistics of `images`.

    Each batch runs through `model.iterate(..., training=True)`: the norms' own statistics come
    from the first (ungated) pass, and with `recurrent_batch_norm="gated_passes"` the gated
    passes' statistics from the passes after it; each update overwrites the previous pass's, so
    the gated statistics are those of pass `num_iterations`. The momentum of batch n is
    (n - 1) / n, so after `steps` batches the moving statistics are the mean over them. Norms
    whose `trainable` is False keep theirs (they do not update in training mode).

    Args:
        model: a `RIGNet` (built or not).
        images: normalised images (B, H, W, 3) in the model's input convention (one batch), or
            an iterable of such batches (a list, a `tf.data.Dataset` of images).
        num_iterations: the ui of the calibration unroll; None for 2 when some block runs more
            than once (so that the gated passes are settled too), else 1.
        steps: how many batches to use; None for every batch of `images`.

    Returns:
        The number of batches used.

    Raises:
        ValueError: `steps` or `num_iterations` is not an int >= 1, or `images` holds no batch.
    """
    if num_iterations is None:
        num_iterations = 2 if model.repeated_blocks else 1
    check_num_iterations(num_iterations)
    if steps is not None:
        check_num_iterations(steps, "steps")
    norms = batch_norms(model)
    momenta = [norm.momentum for norm in norms]
    used = 0
    try:
        for batch in _batches(images):
            if steps is not None and used >= steps:
                break
            for norm in norms:
                norm.momentum = used / (used + 1)
            x = ops.cast(ops.convert_to_tensor(batch), model.compute_dtype)
            for _ in model.iterate(x, num_iterations, training=True):
                pass
            used += 1
    finally:
        for norm, momentum in zip(norms, momenta, strict=True):
            norm.momentum = momentum
    if used == 0:
        raise ValueError("calibrate_batch_norm: images holds no batch")
    return used
