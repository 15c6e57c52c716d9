"""Sample images for parity checks and calibration: the caller's data, or a synthetic stand-in.

`collect_images` accepts any iterable of uint8 images: arrays (H, W, 3) or batches (N, H, W, 3),
tensors, `(image, label)` pairs, or dicts with an "image" or "images" key (as data pipelines
yield). `synthetic_images` makes deterministic scene-like images (smooth colour fields with
a few flat shapes and a little noise) when no data is given; real images calibrate int8 better.
"""

import numpy as np
from PIL import Image

DEFAULT_SAMPLE_SIZE = (97, 89)


def synthetic_images(num_images, size, seed=0):
    """Deterministic synthetic uint8 RGB images (num_images, H, W, 3)."""
    height, width = size
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(num_images):
        coarse = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        field = np.asarray(
            Image.fromarray(coarse).resize((width, height), Image.BILINEAR), np.float32
        )
        yy, xx = np.mgrid[0:height, 0:width]
        for _ in range(int(rng.integers(2, 5))):
            cy, cx = rng.uniform(0, height), rng.uniform(0, width)
            ry, rx = rng.uniform(0.1, 0.4) * height, rng.uniform(0.1, 0.4) * width
            inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
            field[inside] = rng.integers(0, 256, 3)
        field += rng.normal(0.0, 6.0, field.shape)
        images.append(np.clip(field + 0.5, 0, 255).astype(np.uint8))
    return np.stack(images)


def _image_of(item):
    if isinstance(item, dict):
        for key in ("image", "images"):
            if key in item:
                return item[key]
        raise ValueError(f"a sample dict needs an 'image' key; received keys {sorted(item)}")
    if isinstance(item, (tuple, list)) and item and not np.isscalar(item[0]):
        return item[0]
    return item


def collect_images(data, limit, size=None, what="sample data"):
    """Up to `limit` uint8 images (N, H, W, 3) from an iterable (see the module docstring).

    Args:
        data: the iterable; an array (N, H, W, 3) also works.
        limit: the most images to take.
        size: (H, W) that every image must have, or None.
        what: how errors name the data ("representative data", ...).

    Raises:
        ValueError: an item is not a uint8 RGB image, has another size, or there is none.
    """
    if isinstance(data, np.ndarray) and data.ndim == 4:
        data = [data]
    images = []
    for item in data:
        array = np.asarray(_image_of(item))
        if array.ndim == 3:
            array = array[None]
        if array.ndim != 4 or array.shape[-1] != 3:
            raise ValueError(
                f"{what} must be RGB images (H, W, 3) or (N, H, W, 3); received shape {array.shape}"
            )
        if array.dtype != np.uint8:
            raise ValueError(f"{what} must be uint8 images (0-255); received {array.dtype}")
        if size is not None and tuple(array.shape[1:3]) != tuple(size):
            raise ValueError(
                f"{what} holds a {array.shape[2]}x{array.shape[1]} (width x height) image; the "
                f"export's input size is {size[1]}x{size[0]}"
            )
        images.extend(array)
        if len(images) >= limit:
            break
    if not images:
        raise ValueError(f"{what} holds no image")
    images = images[:limit]
    if len({im.shape for im in images}) > 1:
        raise ValueError(f"{what} mixes image sizes {sorted({im.shape for im in images})}")
    return np.stack(images)


def images_from_folder(folder, size, limit=None):
    """Reads the images of a folder as uint8 RGB, resized bilinearly to `size` = (H, W).

    Returns:
        uint8 (N, H, W, 3), files in sorted order.

    Raises:
        ValueError: the folder is missing, holds no image, or a file is not a readable image.
    """
    from rignet_runtime import RunnerError, list_images, load_image

    try:
        files = list_images(folder)
    except RunnerError as error:
        raise ValueError(str(error)) from None
    images = []
    for path in files[:limit]:
        try:
            image = load_image(path)
        except RunnerError as error:
            raise ValueError(str(error)) from None
        if tuple(image.shape[:2]) != tuple(size):
            image = np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.BILINEAR))
        images.append(image)
    return np.stack(images)
