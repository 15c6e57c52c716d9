"""Image and mask files of the runtime: reading images, fitting them to a graph, writing masks.

Masks are palette PNGs with the PASCAL VOC palette (the pixel values are the class ids);
overlays (and gate-map pictures) are RGB PNGs. `output_paths` names one mask (and overlay, and
gate-map picture) per input and refuses names that would overwrite an input or another output.
"""

import io
import os

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import RunnerError
from .jpeg import jpeg_fault

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")
MASK_SUFFIX = ".png"
OVERLAY_SUFFIX = "_overlay.png"
GATE_MAPS_SUFFIX = "_gates.png"


def voc_palette(num_colors=256):
    """The PASCAL VOC palette as uint8 (num_colors, 3); index 255 is (224, 224, 192)."""
    palette = np.zeros((num_colors, 3), np.uint8)
    for i in range(num_colors):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette[i] = (r, g, b)
    return palette


def list_images(path):
    """The image files to process: `path` itself, or the image files of a folder (sorted)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        files = sorted(
            os.path.join(path, name)
            for name in os.listdir(path)
            if name.lower().endswith(IMAGE_SUFFIXES) and not name.startswith(".")
        )
        if not files:
            raise RunnerError(f"folder {path!r} holds no image ({', '.join(IMAGE_SUFFIXES)})")
        return files
    if not os.path.exists(path):
        raise RunnerError(f"input {path!r} does not exist")
    return [path]


def read_image_file(path):
    """The bytes of an image file, checked: readable, an image Pillow identifies, and for a
    JPEG, scan data that is whole (`jpeg_fault`; libjpeg would decode a corrupt body with a
    warning and garbage pixels). Reads no pixels.

    Raises:
        RunnerError: naming the file and the fault.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
        with Image.open(io.BytesIO(data)):
            pass
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise RunnerError(f"{path!r} is not an image Pillow can read ({error})") from None
    fault = jpeg_fault(data)
    if fault:
        raise RunnerError(f"{path!r} has corrupt JPEG data: {fault}")
    return data


def load_image(path):
    """Reads an image file as uint8 RGB (H, W, 3), upright (its EXIF orientation applied),
    after the checks of `read_image_file`.

    Raises:
        RunnerError: naming the file, when it is not a whole image Pillow can read.
    """
    data = read_image_file(path)
    try:
        with Image.open(io.BytesIO(data)) as image:
            upright = ImageOps.exif_transpose(image)
            return np.asarray(upright.convert("RGB"), np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise RunnerError(f"{path!r} is not an image Pillow can read ({error})") from None


def fit_image(image, size, resize=False, name="image", model_name="the model"):
    """Checks an image (H, W, 3) against a fixed graph size (h, w), resizing it if allowed.

    Returns:
        uint8 (h, w, 3).
    """
    height, width = image.shape[:2]
    if (height, width) == tuple(size):
        return image
    if not resize:
        raise RunnerError(
            f"{name} is {width}x{height} (width x height) but {model_name} takes "
            f"{size[1]}x{size[0]} images (a fixed-size graph); resize it, or pass --resize"
        )
    resized = Image.fromarray(image).resize((size[1], size[0]), Image.BILINEAR)
    return np.asarray(resized, np.uint8)


def resize_mask(class_map, size):
    """Resizes a class map (h, w) to (H, W) with nearest neighbours."""
    if tuple(class_map.shape) == tuple(size):
        return class_map
    mask = Image.fromarray(class_map.astype(np.uint8), mode="L")
    return np.asarray(mask.resize((size[1], size[0]), Image.NEAREST))


def _require_png(path):
    if not os.fspath(path).lower().endswith(".png"):
        raise RunnerError(f"masks and overlays are written as PNG; {os.fspath(path)!r} is not .png")


def write_mask(path, class_map):
    """Writes a class map (H, W) as a palette PNG with the PASCAL VOC palette."""
    _require_png(path)
    class_map = np.asarray(class_map)
    if class_map.min(initial=0) < 0 or class_map.max(initial=0) > 255:
        raise RunnerError(f"class ids must be in 0..255 for a palette PNG; writing {path!r}")
    mask = Image.fromarray(class_map.astype(np.uint8), mode="P")
    mask.putpalette(voc_palette().reshape(-1).tolist())
    mask.save(path, format="PNG")


def overlay(image, class_map, alpha=0.5):
    """Blends the VOC colours of a class map (H, W) over an RGB image (H, W, 3): uint8 (H, W, 3)."""
    colours = voc_palette()[np.asarray(class_map).astype(np.uint8)].astype(np.float32)
    blended = (1.0 - alpha) * image.astype(np.float32) + alpha * colours
    return np.clip(blended + 0.5, 0, 255).astype(np.uint8)


def write_overlay(path, image, class_map, alpha=0.5):
    """Writes `overlay(image, class_map, alpha)` as an RGB PNG."""
    _require_png(path)
    Image.fromarray(overlay(image, class_map, alpha)).save(path, format="PNG")


def _real(path):
    return os.path.normcase(os.path.realpath(os.fspath(path)))


def output_paths(inputs, output_dir, overlays=True, gate_maps=False):
    """The mask (and overlay, and gate-map picture) path of every input image, one set per input.

    An input's outputs are `<stem>.png`, `<stem>_overlay.png` and `<stem>_gates.png`; inputs
    whose stems collide (`a.jpg` and `a.png`) get `<stem>_<suffix>` stems instead (`a_jpg.png`,
    `a_png.png`).

    Args:
        inputs: image paths (from `list_images`).
        output_dir: the output folder.
        overlays: also name an overlay per input.
        gate_maps: also name a gate-map picture per input (the Keras model's `rignet predict`).

    Returns:
        A list, one per input, of {"mask": path, "overlay": path or None}, plus "gate_maps":
        path when `gate_maps` is set.

    Raises:
        RunnerError: an output would overwrite an input image or another input's output.
    """
    output_dir = os.fspath(output_dir)
    stems = [os.path.splitext(os.path.basename(os.fspath(p))) for p in inputs]
    counts = {}
    for stem, _ in stems:
        counts[stem.lower()] = counts.get(stem.lower(), 0) + 1
    plans, owner = [], {}
    for path, (stem, suffix) in zip(inputs, stems, strict=True):
        if counts[stem.lower()] > 1:
            stem = f"{stem}_{suffix.lstrip('.').lower()}"
        plan = {"mask": os.path.join(output_dir, stem + MASK_SUFFIX), "overlay": None}
        if overlays:
            plan["overlay"] = os.path.join(output_dir, stem + OVERLAY_SUFFIX)
        if gate_maps:
            plan["gate_maps"] = os.path.join(output_dir, stem + GATE_MAPS_SUFFIX)
        for output in filter(None, plan.values()):
            key = os.path.normcase(os.path.abspath(output))
            if key in owner:
                raise RunnerError(
                    f"the outputs of {os.fspath(path)!r} and {owner[key]!r} would both be "
                    f"{output!r}; rename one of the inputs"
                )
            owner[key] = os.fspath(path)
        plans.append(plan)
    images = {_real(p): os.fspath(p) for p in inputs}
    for plan in plans:
        for output in filter(None, plan.values()):
            if _real(output) in images:
                raise RunnerError(
                    f"writing {output!r} would overwrite the input image "
                    f"{images[_real(output)]!r}; choose another --output-dir"
                )
    return plans
