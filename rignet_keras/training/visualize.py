"""Pictures of a model's work: palette PNG masks, colour overlays, gate maps, the anytime plot.

The masks and overlays are the device runtime's (`rignet_keras.runtime.write_mask`, `overlay`,
`voc_palette`), so a picture made here looks like one made on a device; every file is a PNG.
Matplotlib runs with the Agg backend (no display needed).

Gate maps. A gate multiplies each channel of a block's input by its own factor at each pixel.
The mean of those factors over the channels sits near the middle of the gate's range even when
single channels open and close strongly (they do so in different places), so the maps drawn
here are of what varies (`gate_statistics`, `save_gate_figure`; `rignet predict --gate-maps`
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
(`rignet_keras.training.evaluate.logits_per_iteration`). `gate_maps` (the channel means) and
`save_gate_maps` remain for code that reads them.
"""

import os

import numpy as np
import tensorflow as tf
from PIL import Image

from rignet_keras.models.rignet import RIGNet
from rignet_keras.ops import resize_bilinear, spatial_size
from rignet_keras.preprocessing import denormalize
from rignet_keras.runtime import overlay, voc_palette, write_mask  # noqa: F401 (re-exported)


def save_palette_png(path, mask):
    """Writes class indices (H, W) as a palette ('P') PNG with the VOC palette (the runtime's
    `write_mask`), creating the folder; returns `path`."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must have shape (H, W); received {mask.shape}")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_mask(path, mask)
    return path


def to_rgb(image, preprocessing):
    """A normalised image (H, W, 3) back to RGB uint8 for display."""
    return np.clip(denormalize(np.asarray(image), preprocessing), 0, 255).astype(np.uint8)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_anytime(curves, path, score="mIoU", title="mIoU against ui (anytime)"):
    """Plots {label: [(ui, value in [0, 1])]} as percent against ui; writes a PNG; returns path."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
    for label, points in curves.items():
        points = [(k, v) for k, v in points if v is not None and np.isfinite(v)]
        if not points:
            continue
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, [100 * y for y in ys], marker="o", label=label)
    ax.set_xlabel("ui (iterations)")
    ax.set_ylabel(f"{score} (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    all_ui = sorted({k for points in curves.values() for k, _ in points})
    if all_ui:
        ax.set_xticks(all_ui)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------------------------
# Gate maps: reading the gates


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
# Gate maps: statistics (NumPy, on gate values (B, h, w, C) and probabilities (B, H, W, C))


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


def _gate_range(gates):
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
    from rignet_keras.training.evaluate import logits_per_iteration

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
            "range": _gate_range(g),
        }
    logits = logits_per_iteration(model, images, list(range(1, k + 1)))
    probs = {t: tf.nn.softmax(v, axis=-1).numpy() for t, v in logits.items()}
    stats["prediction_change"] = {
        t: probability_change(probs[t], probs[t - 1]) for t in probs if t > 1
    }
    stats["labels_changed"] = {t: labels_changed(probs[t], probs[t - 1]) for t in probs if t > 1}
    stats["labels"] = np.argmax(probs[k], axis=-1).astype(np.uint8)
    return stats


# --------------------------------------------------------------------------------------------
# Gate maps: pictures


def _label(ax, text):
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=8, transform=ax.transAxes)


def _row(fig, axes, maps, titles, vmax, cmap, vmin=0.0):
    """Draws `maps` (h, w) into the first of `axes` (a whole row of panels) with one colour
    scale from `vmin` to `vmax`, and one colour bar at the row's right end."""
    image = None
    for ax, m, title in zip(axes, maps, titles, strict=False):
        if m is None:
            continue
        image = ax.imshow(m, cmap=cmap, vmin=vmin, vmax=max(float(vmax), vmin + 1e-6))
        ax.set_title(title, fontsize=7)
    if image is not None:
        fig.colorbar(image, ax=list(axes), fraction=0.02, pad=0.01)


def save_gate_figure(stats, image_rgb, path, index=0, title=None):
    """One PNG of what the gates do on one sample (a row label on the left of every row):

    - the image, then the prediction's change from ui t - 1 to t (total-variation distance per
      pixel, scaled to its largest value; the share of labels that changed in the title);
    - per gated block: the spread of the gate across channels at ui 2..K (the channel mean, over
      the image, in the title: it stays near the middle of the range); the gate's change
      from ui t - 1 to t (mean |difference| over channels) at ui 3..K; and its `top_k` most
      selective channels at ui K, each on the gate's scale 0..1 (its variation over the image
      in the title).

    Args:
        stats: the output of `gate_statistics`.
        image_rgb: uint8 (H, W, 3) of the sample.
        path: the PNG to write (its folder is created).
        index: which sample of the batch.

    Returns:
        `path`.
    """
    plt = _pyplot()
    k = stats["iterations"]
    steps = list(range(2, k + 1))
    top_k = max((s["channels"].shape[1] for s in stats["selective"].values()), default=0)
    rows = [("image", None)]
    for name in stats["blocks"]:
        rows.append(("spread", name))
        if k >= 3:
            rows.append(("change", name))
        rows.append(("selective", name))
    cols = 1 + max(len(steps), top_k, 1)
    fig, axes = plt.subplots(
        len(rows),
        cols,
        figsize=(1.9 * cols + 0.6, 1.8 * len(rows)),
        dpi=100,
        squeeze=False,
        layout="constrained",
    )
    for ax in axes.flat:
        ax.axis("off")
    for r, (kind, name) in enumerate(rows):
        head = axes[r][0]
        panels = axes[r][1:]
        if kind == "image":
            head.imshow(image_rgb)
            head.set_title("image", fontsize=7)
            maps = [stats["prediction_change"][t][index] for t in steps]
            titles = [
                f"prediction change {t - 1}->{t}\n"
                f"{100 * stats['labels_changed'][t][index]:.1f}% labels changed"
                for t in steps
            ]
            vmax = max([float(m.max()) for m in maps] + [1e-3])
            _row(fig, panels, maps, titles, vmax, "magma")
        elif kind == "spread":
            _label(head, f"{name}\nspread of the gate\nacross channels\n(std per pixel)")
            maps = [stats["spread"][(name, t)][index] for t in steps]
            vmax = max(float(m.max()) for m in maps)
            titles = [
                f"{name}, ui {t}\nchannel mean {stats['mean'][(name, t)][index].mean():.2f}"
                for t in steps
            ]
            _row(fig, panels, maps, titles, vmax, "viridis")
        elif kind == "change":
            _label(head, f"{name}\nchange of the gate\nfrom ui t-1 to t\n(mean |diff|)")
            maps = [stats["change"].get((name, t)) for t in steps]
            maps = [None if m is None else m[index] for m in maps]
            vmax = max((float(m.max()) for m in maps if m is not None), default=1.0)
            titles = [f"{name}, ui {t - 1}->{t}" for t in steps]
            _row(fig, panels, maps, titles, vmax, "inferno")
        else:
            sel = stats["selective"][name]
            _label(head, f"{name}\nmost selective\nchannels, ui {sel['iteration']}")
            channels, variation = sel["channels"][index], sel["variation"][index]
            maps = list(sel["maps"][index])
            titles = [f"ch {c}, std {v:.2f}" for c, v in zip(channels, variation, strict=True)]
            lo, hi = sel["range"]
            _row(fig, panels, maps, titles, hi, "viridis", vmin=lo)
    if title:
        fig.suptitle(title, fontsize=9)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def save_gate_maps(maps, image_rgb, path, index=0, title=None):
    """One PNG: the image, then a grid of channel-mean gate maps (rows: blocks, columns:
    iterations), from the output of `gate_maps`. `save_gate_figure` draws what varies."""
    plt = _pyplot()
    blocks = sorted({name for name, _ in maps}, key=lambda n: (len(n), n))
    steps = sorted({t for _, t in maps})
    rows, cols = max(1, len(blocks)), len(steps) + 1
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.2 * rows), dpi=100, squeeze=False)
    for r in range(rows):
        ax = axes[r][0]
        if r == 0:
            ax.imshow(image_rgb)
            ax.set_title("image", fontsize=8)
        ax.axis("off")
    for r, name in enumerate(blocks):
        for c, t in enumerate(steps, start=1):
            ax = axes[r][c]
            m = maps.get((name, t))
            ax.axis("off")
            if m is None:
                continue
            im = ax.imshow(m[index], cmap="viridis")
            ax.set_title(f"{name} gate, ui {t}\nmean {m[index].mean():.2f}", fontsize=7)
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def gate_map_file_names(stats):
    """The maps of `gate_statistics` that `save_gate_map_images` writes one file each, in order:
    `{block}_ui{t}_spread.png` (t = 2..K), `{block}_ui{t}_change.png` (t = 3..K) and
    `prediction_ui{t}_change.png` (t = 2..K), as a list of (name, kind, key), key being the
    entry of `stats[kind]`. (The selective channels' files depend on the sample; that function
    names them itself.)"""
    names = []
    for name in stats["blocks"]:
        for t in range(2, stats["iterations"] + 1):
            if (name, t) in stats["spread"]:
                names.append((f"{name}_ui{t}_spread.png", "spread", (name, t)))
        for t in range(3, stats["iterations"] + 1):
            if (name, t) in stats["change"]:
                names.append((f"{name}_ui{t}_change.png", "change", (name, t)))
    for t in sorted(stats["prediction_change"]):
        names.append((f"prediction_ui{t}_change.png", "prediction_change", t))
    return names


def save_gate_map_images(stats, folder, index=0, prefix=""):
    """Writes each map of `gate_statistics` for sample `index` as its own PNG in `folder`
    (names: `gate_map_file_names`, plus `{block}_ui{K}_channel{c}.png` per selective channel),
    each on its own min-max scale (viridis); returns the paths."""
    plt = _pyplot()
    os.makedirs(folder, exist_ok=True)
    paths = []
    for file_name, kind, key in gate_map_file_names(stats):
        path = os.path.join(folder, prefix + file_name)
        plt.imsave(path, stats[kind][key][index], cmap="viridis")
        paths.append(path)
    for name in stats["blocks"]:
        sel = stats["selective"][name]
        for j, c in enumerate(sel["channels"][index]):
            path = os.path.join(folder, f"{prefix}{name}_ui{sel['iteration']}_channel{c}.png")
            lo, hi = sel["range"]
            plt.imsave(path, sel["maps"][index][j], cmap="viridis", vmin=lo, vmax=hi)
            paths.append(path)
    return paths


# --------------------------------------------------------------------------------------------
# Predictions for a sample of images


def save_predictions(
    model,
    dataset,
    output_dir,
    *,
    num_images=8,
    num_iterations=None,
    preprocessing=None,
    ids=None,
    with_gate_maps=True,
):
    """Writes, for the first `num_images` images of `dataset`: the predicted mask as a palette
    PNG (`masks/`), the ground truth (`ground_truth/`), a colour overlay (`overlays/`), and the
    gate maps (`gate_maps/`: `save_gate_figure` per image, and each map of it as its own PNG,
    `save_gate_map_images`, in a folder per image). Every file is a
    PNG named after the sample's id (`<id>.png`); an id repeated within the images drawn is
    refused, naming it, so no sample's files replace another's.

    Args:
        model: a `RIGNet`.
        dataset: batches (images, masks[, ids]).
        output_dir: the folder.
        num_images: how many images.
        num_iterations: ui of the prediction; default the model's.
        preprocessing: how the images were normalised; default `model.preprocessing`.

    Returns:
        {"masks": [...], "overlays": [...], "gate_maps": [...]} of paths.
    """
    preprocessing = preprocessing or getattr(model, "preprocessing", "torch")
    k = num_iterations or getattr(model, "num_iterations", 1)
    out = {"masks": [], "ground_truth": [], "overlays": [], "gate_maps": []}
    done, taken = 0, set()
    for batch in dataset:
        images, masks = batch[0], batch[1]
        names = batch[2].numpy() if len(batch) > 2 else None
        stats = None
        if with_gate_maps and k > 1 and isinstance(model, RIGNet):
            stats = gate_statistics(model, images, k)  # its labels are the prediction at ui k
            preds = stats["labels"]
        elif isinstance(model, RIGNet):
            preds = model(images, training=False, num_iterations=k)
        else:
            preds = model(images, training=False)
        if stats is None:
            preds = preds[-1] if isinstance(preds, (list, tuple)) else preds
            preds = tf.argmax(preds, axis=-1).numpy().astype(np.uint8)
        for i in range(images.shape[0]):
            if done >= num_images:
                return out
            name = names[i].decode() if names is not None else f"{done:04d}"
            if name in taken:
                raise ValueError(f"sample id {name!r} appears twice among the images drawn")
            taken.add(name)
            file_name = f"{name}.png"
            rgb = to_rgb(images[i].numpy(), preprocessing)
            out["masks"].append(
                save_palette_png(os.path.join(output_dir, "masks", file_name), preds[i])
            )
            gt = np.asarray(masks[i]).astype(np.uint8)
            out["ground_truth"].append(
                save_palette_png(os.path.join(output_dir, "ground_truth", file_name), gt)
            )
            side = np.concatenate([rgb, overlay(rgb, gt), overlay(rgb, preds[i])], axis=1)
            path = os.path.join(output_dir, "overlays", file_name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            Image.fromarray(side).save(path, format="PNG")
            out["overlays"].append(path)
            if stats is not None and stats["blocks"]:
                folder = os.path.join(output_dir, "gate_maps")
                out["gate_maps"].append(
                    save_gate_figure(
                        stats,
                        rgb,
                        os.path.join(folder, file_name),
                        index=i,
                        title=f"{name}: what the gates do, ui {k}",
                    )
                )
                out["gate_maps"].extend(
                    save_gate_map_images(stats, os.path.join(folder, name), index=i)
                )
            done += 1
    return out
