"""What the gates do, as maps: the gates read on one path, and the statistics that show where
they act.

A gate multiplies each channel of a block's input by its own factor at each pixel. The mean of
those factors over the channels sits near the middle of the gate's range even when single
channels open and close strongly (they do so in different places), so the maps computed here are
of what varies (`gate_statistics`; `gate_figures` draws them, and `rignet predict --gate-maps`
writes the figure as `<stem>_gates.png`):

- spread: the standard deviation of the gate across channels at each pixel (`channel_spread`).
  Bright where the top-down signal passes some features and blocks others; dark where it
  scales every channel alike.
- most selective channels: the k channels whose gate varies most over the image
  (`most_selective_channels`), each drawn on the gate's own scale (0..1 for a sigmoid gate):
  where a single feature is opened or shut.
- gate change: the mean over channels of |gate at ui t - gate at ui t-1| (`gate_change`), from
  ui 3 on (ui 2's gate is the first): where the feedback is still moving.
- prediction change: the total-variation distance between the class probabilities of ui t-1
  and t at each pixel, 0..1 (`probability_change`), with the share of pixels whose label
  changed (`labels_changed`, what the runtime's "stable" stopping test reads): where the
  answer has settled and where it is still moving.

The gates are read on one path, `RIGNet.gate_inputs` with `gate_activation`
(`gate_activations`), and the predictions per iteration on the one driver, `RIGNet.iterate`
(`rignet_keras.training.evaluate.logits_per_iteration`). `gate_maps` (the channel means) remains
for code that reads them.
"""

import numpy as np
import tensorflow as tf

from rignet_keras.ops import resize_bilinear, spatial_size
from rignet_keras.training.evaluate import logits_per_iteration


def gate_activation(gate, g):
    """The gate's multiplier (or additive term) from its pre-activations `g`."""
    if gate.combine == "mul_sigmoid":
        return tf.sigmoid(g)
    if gate.combine == "mul_tanh":
        return tf.tanh(g)
    return g


def _gate_name(model, gate, block):
    return "network" if gate is model.network_feedback else f"block{block}"


def gate_activations(model, images, num_iterations=None):
    """Every gate's per-channel values at every gated iteration.

    Block k's gate at iteration t >= 2 modulates x = the input of block k in pass t with
    y = block k's output of pass t - 1 (`RIGNet.gate_inputs` lists them); its values are
    `sigmoid(gate_map(x, y))` for mul_sigmoid (tanh for mul_tanh, the raw term for add_relu),
    one per channel of x.

    Args:
        model: a `RIGNet` in "parallel", "multi_range", "sequential" or "network_gated" mode.
        images: normalised images (B, H, W, 3).
        num_iterations: ui; default the model's.

    Returns:
        {(block_name, t): float32 NumPy (B, h, w, C)}; block_name is e.g. "block4" ("network"
        for the network-wide gate). Empty for a model without gates.
    """
    x = tf.cast(images, model.compute_dtype)
    values = {}
    for entry in model.gate_inputs(x, num_iterations, training=False):
        gate, feedback = entry.gate, entry.feedback
        if entry.long_range is not None:  # a MultiRangeFeedbackGate's long-range feedback
            long_range = resize_bilinear(gate.long_range(entry.long_range), spatial_size(feedback))
            feedback = tf.concat([feedback, long_range], axis=-1)
        g = gate_activation(gate, tf.cast(gate.gate_map(entry.x, feedback), tf.float32))
        values[(_gate_name(model, gate, entry.block), entry.iteration)] = g.numpy()
    return values


def gate_maps(model, images, num_iterations=None):
    """The channel mean of every gate at every gated iteration: {(block_name, t): (B, h, w)}.

    The mean of many channels that open and close in different places sits near the middle of
    the gate's range; `gate_statistics` gives the maps that show where the gates act.
    """
    return {
        key: g.mean(axis=-1) for key, g in gate_activations(model, images, num_iterations).items()
    }


# --------------------------------------------------------------------------------------------
# Statistics (NumPy, on gate values (B, h, w, C) and probabilities (B, H, W, C))


def channel_spread(gates):
    """The standard deviation of the gate across channels at each pixel: (B, h, w, C) -> (B, h, w).

    High where the gate passes some channels and closes others (it selects features there);
    zero where every channel gets the same factor."""
    return np.std(np.asarray(gates, np.float32), axis=-1)


def most_selective_channels(gates, k):
    """The `k` channels whose gate varies most over the image, per sample.

    A channel's variation is the standard deviation of its gate over the pixels (h, w); the
    channels are sorted by it, largest first, ties to the lower index.

    Args:
        gates: (B, h, w, C).
        k: how many (at most C).

    Returns:
        (channels int (B, k), variation float32 (B, k)).
    """
    g = np.asarray(gates, np.float32)
    variation = g.reshape(g.shape[0], -1, g.shape[-1]).std(axis=1)  # (B, C)
    k = min(int(k), g.shape[-1])
    order = np.argsort(-variation, axis=-1, kind="stable")[:, :k]
    return order, np.take_along_axis(variation, order, axis=-1)


def gate_change(gates, previous):
    """The mean over channels of |gate_t - gate_{t-1}| at each pixel: two (B, h, w, C) ->
    (B, h, w). Where the top-down signal still moves from one iteration to the next."""
    return np.mean(np.abs(np.asarray(gates, np.float32) - np.asarray(previous, np.float32)), -1)


def probability_change(probabilities, previous):
    """The total-variation distance between two iterations' class distributions at each pixel,
    `0.5 * sum_c |p_t - p_{t-1}|`: two (B, H, W, C) -> (B, H, W), in [0, 1]."""
    p, q = np.asarray(probabilities, np.float32), np.asarray(previous, np.float32)
    return 0.5 * np.abs(p - q).sum(axis=-1)


def labels_changed(probabilities, previous):
    """The share of pixels whose label (argmax) differs between two iterations: (B,). The
    statistic the runtime's "stable" stopping test reads (`StoppingRule.statistics`)."""
    a = np.argmax(np.asarray(probabilities), axis=-1)
    b = np.argmax(np.asarray(previous), axis=-1)
    return np.mean(a != b, axis=(1, 2))


GATE_TOP_K = 4


def gate_range(gates):
    """The colour scale of a gate's values: 0..1 for values inside it (a sigmoid gate), else
    their own minimum and maximum (a tanh or additive gate)."""
    lo, hi = float(np.min(gates)), float(np.max(gates))
    return (0.0, 1.0) if lo >= 0.0 and hi <= 1.0 else (lo, hi)


def gate_statistics(model, images, num_iterations=None, top_k=GATE_TOP_K):
    """What the gates do on `images`, as maps: the gate reading of `gate_activations` (the one
    path through `RIGNet.gate_inputs`) and the predictions of `logits_per_iteration` (the one
    driver, `RIGNet.iterate`), reduced to what varies.

    Args:
        model: a `RIGNet` with gates (see `gate_activations`).
        images: normalised images (B, H, W, 3).
        num_iterations: ui K; default the model's.
        top_k: how many selective channels per gate.

    Returns:
        A dict of NumPy arrays:
        "iterations": K; "blocks": the gate names, in block order;
        "spread": {(block, t): (B, h, w)} `channel_spread` for t = 2..K;
        "mean": {(block, t): (B, h, w)} the channel mean (`gate_maps`), for reference;
        "change": {(block, t): (B, h, w)} `gate_change` of t against t - 1, for t = 3..K;
        "selective": {block: {"iteration": K, "channels": (B, k), "variation": (B, k),
        "maps": (B, k, h, w), "range": (lo, hi) its colour scale}} the
        `most_selective_channels` of the gate at ui = K;
        "prediction_change": {t: (B, H, W)} `probability_change` of t against t - 1, t = 2..K;
        "labels_changed": {t: (B,)} `labels_changed` of t against t - 1;
        "labels": (B, H, W) uint8, the prediction at ui = K.
    """
    k = int(num_iterations or model.num_iterations)
    gates = gate_activations(model, images, k)
    blocks = sorted({name for name, _ in gates}, key=lambda n: (n != "network", len(n), n))
    stats = {"iterations": k, "blocks": blocks, "spread": {}, "mean": {}, "change": {}}
    stats["selective"] = {}
    for (name, t), g in gates.items():
        stats["spread"][(name, t)] = channel_spread(g)
        stats["mean"][(name, t)] = g.mean(axis=-1)
        if (name, t - 1) in gates:
            stats["change"][(name, t)] = gate_change(g, gates[(name, t - 1)])
    for name in blocks:
        last = max(t for n, t in gates if n == name)
        g = gates[(name, last)]
        channels, variation = most_selective_channels(g, top_k)
        maps = np.stack([g[b, :, :, channels[b]] for b in range(g.shape[0])])  # (B, k, h, w)
        stats["selective"][name] = {
            "iteration": last,
            "channels": channels,
            "variation": variation,
            "maps": maps,
            "range": gate_range(g),
        }
    logits = logits_per_iteration(model, images, list(range(1, k + 1)))
    probs = {t: tf.nn.softmax(v, axis=-1).numpy() for t, v in logits.items()}
    stats["prediction_change"] = {
        t: probability_change(probs[t], probs[t - 1]) for t in probs if t > 1
    }
    stats["labels_changed"] = {t: labels_changed(probs[t], probs[t - 1]) for t in probs if t > 1}
    stats["labels"] = np.argmax(probs[k], axis=-1).astype(np.uint8)
    return stats
