"""Pictures of a model's work: palette PNG masks, colour overlays, gate maps, the anytime plot.

The masks and overlays are the device runtime's (`rignet_keras.runtime.write_mask`, `overlay`,
`voc_palette`), so a picture made here looks like one made on a device; every file is a PNG.
Matplotlib runs with the Agg backend (no display needed).
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
# Gate maps


def gate_activation(gate, g):
    """The gate's multiplier (or additive term) from its pre-activations `g`."""
    if gate.combine == "mul_sigmoid":
        return tf.sigmoid(g)
    if gate.combine == "mul_tanh":
        return tf.tanh(g)
    return g


def gate_maps(model, images, num_iterations=None):
    """The gate maps of every gated block at every gated iteration, averaged over channels.

    Block k's gate at iteration t >= 2 modulates x = the input of block k in pass t with
    y = block k's output of pass t - 1 (`RIGNet.gate_inputs` lists them); the map is
    `sigmoid(gate_map(x, y))` for mul_sigmoid (tanh for mul_tanh, the raw term for add_relu),
    mean over channels.

    Args:
        model: a `RIGNet` in "parallel", "multi_range", "sequential" or "network_gated" mode.
        images: normalised images (B, H, W, 3).
        num_iterations: ui; default the model's.

    Returns:
        {(block_name, t): float32 (B, h, w)}; block_name is e.g. "block4" ("network" for the
        network-wide gate). Empty for a model without gates.
    """
    x = tf.cast(images, model.compute_dtype)
    maps = {}
    for entry in model.gate_inputs(x, num_iterations, training=False):
        gate, feedback = entry.gate, entry.feedback
        if entry.long_range is not None:  # a MultiRangeFeedbackGate's long-range feedback
            long_range = resize_bilinear(gate.long_range(entry.long_range), spatial_size(feedback))
            feedback = tf.concat([feedback, long_range], axis=-1)
        g = gate_activation(gate, tf.cast(gate.gate_map(entry.x, feedback), tf.float32))
        name = "network" if gate is model.network_feedback else f"block{entry.block}"
        maps[(name, entry.iteration)] = tf.reduce_mean(g, axis=-1).numpy()
    return maps


def save_gate_maps(maps, image_rgb, path, index=0, title=None):
    """One PNG: the image, then a grid of gate maps (rows: blocks, columns: iterations).

    Args:
        maps: the output of `gate_maps`.
        image_rgb: uint8 (H, W, 3) of the sample, shown first.
        path: the PNG to write.
        index: which sample of the batch.
    """
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


def save_gate_map_images(maps, folder, index=0, prefix=""):
    """Writes each gate map as its own PNG (`{prefix}{block}_ui{t}.png`, viridis, min-max
    scaled); returns the paths."""
    plt = _pyplot()
    os.makedirs(folder, exist_ok=True)
    paths = []
    for (name, t), m in sorted(maps.items()):
        path = os.path.join(folder, f"{prefix}{name}_ui{t}.png")
        plt.imsave(path, m[index], cmap="viridis")
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
    gate maps (`gate_maps/`, a grid per image and one PNG per block and ui). Every file is a
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
        if isinstance(model, RIGNet):
            preds = model(images, training=False, num_iterations=k)
        else:
            preds = model(images, training=False)
        preds = preds[-1] if isinstance(preds, (list, tuple)) else preds
        preds = tf.argmax(preds, axis=-1).numpy().astype(np.uint8)
        maps = gate_maps(model, images, k) if with_gate_maps and k > 1 else {}
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
            if maps:
                folder = os.path.join(output_dir, "gate_maps")
                out["gate_maps"].append(
                    save_gate_maps(
                        maps,
                        rgb,
                        os.path.join(folder, file_name),
                        index=i,
                        title=f"{name}: gate maps (mean over channels)",
                    )
                )
                out["gate_maps"].extend(
                    save_gate_map_images(maps, os.path.join(folder, name), index=i)
                )
            done += 1
    return out
