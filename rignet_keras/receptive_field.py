"""Effective receptive field: how strongly each input pixel moves one output pixel's logit.

The effective receptive field (ERF) of an output pixel is the map of |d logit / d image| over the
input, summed over the image's channels and averaged over images (Luo et al., "Understanding the
effective receptive field in deep convolutional neural networks", 2016). Unlike the theoretical
receptive field (every input a pixel can depend on), it says where a trained network actually
looks. For a RIGNet it is measured at each ui, with the same weights, so that it shows how far
the iterations carry evidence beyond the feed-forward pass (ui = 1).

    maps = effective_receptive_field(lambda x: model(x, num_iterations=3), images)
    radius = mass_radius(maps, 0.5)   # the disc about the output pixel holding 50% of the mass

`images` are what the model takes (for a RIGNet: normalised float images), and the gradient is
taken with respect to them.
"""

import numpy as np


def effective_receptive_field(
    logits_fn, images, pixel=None, class_index=None, batch_size=8, per_image=False
):
    """The ERF of one output pixel, averaged over images (or per image).

    Args:
        logits_fn: a callable mapping float images (B, H, W, C_in) to logits (B, H, W, K) at the
            input size (e.g. `lambda x: model(x, num_iterations=k, training=False)`). Images of a
            batch must not interact (inference-mode batch norm).
        images: float (N, H, W, C_in), the inputs `logits_fn` takes.
        pixel: (y, x) of the output pixel, the same in every image; or int (N, 2), one pixel
            per image (e.g. an object pixel far from its evidence); None for the centre
            (H // 2, W // 2).
        class_index: which logit at the pixel: an int, int (N,) one per image (e.g. the true
            class), or None for the class predicted there for each image.
        batch_size: images per gradient computation.
        per_image: return every image's map instead of their mean.

    Returns:
        float64 (H, W): |gradient| summed over input channels, averaged over the N images (not
        normalised; `mass_radius` normalises); (N, H, W) with `per_image`.
    """
    import tensorflow as tf

    images = np.asarray(images, np.float32)
    if images.ndim != 4:
        raise ValueError(f"images must be (N, H, W, C); received shape {images.shape}")
    n, h, w = images.shape[:3]
    pixels = np.array([(h // 2, w // 2)] if pixel is None else pixel, np.int64).reshape(-1, 2)
    if len(pixels) == 1:
        pixels = np.repeat(pixels, n, axis=0)
    if len(pixels) != n:
        raise ValueError(f"pixel must be one (y, x) or one per image ({n}); received {len(pixels)}")
    outside = (pixels < 0).any(1) | (pixels[:, 0] >= h) | (pixels[:, 1] >= w)
    if outside.any():
        raise ValueError(f"pixel {tuple(pixels[outside][0])} lies outside the {h}x{w} image")
    if class_index is not None:
        classes = np.broadcast_to(np.asarray(class_index, np.int64), (n,))
    maps = np.zeros((n, h, w), np.float64)
    for start in range(0, n, batch_size):
        batch = tf.constant(images[start : start + batch_size])
        where = tf.constant(pixels[start : start + batch_size])
        with tf.GradientTape() as tape:
            tape.watch(batch)
            logits = tf.convert_to_tensor(logits_fn(batch))
            at_pixel = tf.gather_nd(logits, where, batch_dims=1)  # (b, K)
            if class_index is None:
                chosen = tf.one_hot(tf.argmax(at_pixel, axis=-1), at_pixel.shape[-1])
            else:
                chosen = tf.one_hot(classes[start : start + batch_size], at_pixel.shape[-1])
            objective = tf.reduce_sum(at_pixel * tf.stop_gradient(chosen))
        grad = tape.gradient(objective, batch)
        maps[start : start + batch_size] = np.abs(grad.numpy()).sum(axis=-1)
    return maps if per_image else maps.mean(axis=0)


def mass_radius(erf, fraction, pixel=None):
    """The radius (pixels) of the smallest disc about `pixel` holding `fraction` of the ERF's
    mass.

    Args:
        erf: (H, W) non-negative map, e.g. from `effective_receptive_field`.
        fraction: in (0, 1].
        pixel: (y, x) the disc's centre; None for (H // 2, W // 2).

    Returns:
        float: the distance from `pixel` to the farthest pixel of the disc (0 when `pixel`
        alone holds the fraction).
    """
    erf = np.asarray(erf, np.float64)
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1]; received {fraction}")
    total = erf.sum()
    if not total > 0:
        raise ValueError("the map holds no mass (all zero): no gradient reached the input")
    h, w = erf.shape
    y, x = (h // 2, w // 2) if pixel is None else pixel
    yy, xx = np.mgrid[0:h, 0:w]
    dist = np.hypot(yy - y, xx - x).ravel()
    order = np.argsort(dist, kind="stable")
    cumulative = np.cumsum(erf.ravel()[order]) / total
    # The disc of radius r holds every pixel at distance <= r: take the first radius whose
    # cumulative mass (ties included) reaches the fraction.
    k = int(np.searchsorted(cumulative, fraction - 1e-12))
    return float(dist[order][min(k, dist.size - 1)])


def support(erf, threshold=0.0):
    """(y0, x0, y1, x1), end-exclusive: the bounding box of the pixels where `erf` > threshold
    (for checks of a network's exact theoretical reach), or None when there are none."""
    ys, xs = np.nonzero(np.asarray(erf) > threshold)
    if ys.size == 0:
        return None
    return int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1
