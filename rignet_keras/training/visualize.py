"""Pictures of a model's predictions on a sample of images (`save_predictions`): palette PNG
masks, colour overlays, and the gate figures of each image.

The masks and overlays are the device runtime's (`rignet_runtime.write_mask`, `overlay`,
`voc_palette`), so a picture made here looks like one made on a device; every file is a PNG.
The gate maps are computed in `gate_maps` and drawn in `gate_figures`; the anytime plot is in
`plots`.
"""

import os

import numpy as np
import tensorflow as tf
from PIL import Image

from rignet_keras.models.rignet import RIGNet
from rignet_keras.preprocessing import denormalize
from rignet_keras.training.gate_figures import save_gate_figure, save_gate_map_images
from rignet_keras.training.gate_maps import gate_statistics
from rignet_runtime import overlay, write_mask  # noqa: F401 (re-exported)


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
