"""The synthetic task's drawing: background, clutter, object shapes, the shared stripe texture,
and the placement of shapes and marks. Every function draws from the `numpy.random.Generator` it
is given, in a fixed order, so a sample is a function of its seed (`samples.generate_sample`)."""

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage


def randint(rng, bounds):
    """An int drawn uniformly from `bounds` = (lo, hi), both included."""
    return int(rng.integers(bounds[0], bounds[1] + 1))


def smooth_noise(rng, h, w, cell):
    """Noise with blobs about `cell` pixels across, in [-1, 1] roughly."""
    gh, gw = max(2, h // cell + 2), max(2, w // cell + 2)
    coarse = rng.standard_normal((gh, gw)).astype(np.float32)
    return ndimage.zoom(coarse, (h / gh, w / gw), order=1, grid_mode=True, mode="nearest")[:h, :w]


def background(rng, h, w):
    """The background: float32 (h, w, 3), a tinted grey with smooth blotches and fine noise."""
    grey = rng.uniform(80, 180)
    tint = rng.normal(0, 14, size=3)
    img = np.empty((h, w, 3), np.float32)
    blotches = smooth_noise(rng, h, w, cell=int(rng.integers(6, 16)))
    for ch in range(3):
        img[..., ch] = grey + tint[ch] + 25 * blotches + rng.normal(0, 6, size=(h, w))
    return img


def draw_clutter(rng, img, config):
    """Draws `config.clutter_per_image` grey lines and bars onto `img` (float32 (H, W, 3)) in
    place."""
    h, w = img.shape[:2]
    canvas = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    for _ in range(randint(rng, config.clutter_per_image)):
        value = int(rng.integers(1, 256))
        x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
        if rng.random() < 0.5:  # a line
            x1, y1 = rng.uniform(0, w), rng.uniform(0, h)
            draw.line([(x0, y0), (x1, y1)], fill=value, width=int(rng.integers(1, 3)))
        else:  # a bar
            bw, bh = rng.uniform(2, w / 6), rng.uniform(2, h / 6)
            draw.rectangle([x0, y0, x0 + bw, y0 + bh], fill=value)
    c = np.asarray(canvas)
    sel = c > 0
    img[sel] = c[sel, None].astype(np.float32) * 0.6 + 40


def shape_region(rng, grid, diameter, cy, cx):
    """A bool (h, w) region: an ellipse or a star-shaped polygon about `diameter` across."""
    yy, xx = grid
    h, w = yy.shape
    r = diameter / 2
    angle = rng.uniform(0, np.pi)
    if rng.random() < 0.5:
        ry, rx = r, r * rng.uniform(0.6, 1.0)
        dy, dx = yy - cy, xx - cx
        u = dx * np.cos(angle) + dy * np.sin(angle)
        v = -dx * np.sin(angle) + dy * np.cos(angle)
        return (u / rx) ** 2 + (v / ry) ** 2 <= 1.0
    n = int(rng.integers(5, 10))
    thetas = angle + np.sort(rng.uniform(0, 2 * np.pi, n))
    radii = r * rng.uniform(0.7, 1.0, n)
    pts = [(cx + rr * np.cos(t), cy + rr * np.sin(t)) for rr, t in zip(radii, thetas, strict=True)]
    canvas = Image.new("1", (w, h), 0)
    ImageDraw.Draw(canvas).polygon(pts, fill=1)
    return np.asarray(canvas, bool)


def bar_region(rng, grid, config):
    """A bool (h, w) bar (a rotated rectangle) lying fully inside the image, or None."""
    yy, xx = grid
    h, w = yy.shape
    side = min(h, w)
    length = rng.uniform(*config.object_size) * side
    width = rng.uniform(*config.bar_width) * side
    angle = rng.uniform(0, np.pi)
    c, s = abs(np.cos(angle)), abs(np.sin(angle))
    ey, ex = length / 2 * s + width / 2 * c + 1, length / 2 * c + width / 2 * s + 1
    if 2 * ey >= h or 2 * ex >= w:
        return None
    cy, cx = rng.uniform(ey, h - ey), rng.uniform(ex, w - ex)
    dy, dx = yy - cy, xx - cx
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = -dx * np.sin(angle) + dy * np.cos(angle)
    return (np.abs(u) <= length / 2) & (np.abs(v) <= width / 2)


def place_shape(rng, grid, free, config, with_mark):
    """(region, mark corner or None) of a shape inside the image and inside `free`, or None.

    An object (`with_mark`) is only accepted if its mark fits inside it, away from the void border.
    """
    h, w = free.shape
    lo, hi = config.object_size
    m, vb = config.resolved_mark_size, config.void_border
    for _ in range(30):
        if config.object_shape == "bar":
            region = bar_region(rng, grid, config)
            if region is None:
                continue
        else:
            d = rng.uniform(lo, hi) * min(h, w)
            r = d / 2 + 1
            region = shape_region(rng, grid, d, rng.uniform(r, h - r), rng.uniform(r, w - r))
        if region.sum() < 16 or (region & ~free).any():
            continue
        if not with_mark:
            return region, None
        inner = ndimage.binary_erosion(region, iterations=vb + 1) if vb else region
        if config.mark_position == "end":
            corner = box_farthest(rng, inner, m, pad=1, centre=ndimage.center_of_mass(region))
        else:
            corner = box_inside(rng, inner, m, pad=1)
        if corner is not None:
            return region, corner
    return None


def stripes(rng, grid):
    """The shared interior texture: grey stripes, same distribution for every class."""
    yy, xx = grid
    h, w = yy.shape
    theta = rng.uniform(0, np.pi)
    period = rng.uniform(4, 9)
    phase = rng.uniform(0, 2 * np.pi)
    lo = rng.uniform(30, 110)
    hi = min(255.0, lo + rng.uniform(60, 130))
    wave = np.sin(2 * np.pi * (xx * np.cos(theta) + yy * np.sin(theta)) / period + phase)
    tex = np.where(wave > 0, hi, lo).astype(np.float32) + rng.normal(0, 8, size=(h, w))
    return np.repeat(tex[..., None], 3, axis=2) + rng.normal(0, 4, size=3)


def box_candidates(allowed, size, pad):
    """(ys, xs): top-left corners of every `size` square whose `pad`-grown box lies in `allowed`."""
    h, w = allowed.shape
    k = size + 2 * pad
    if k > min(h, w):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    integral = np.pad(allowed.astype(np.int32).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = integral[k:, k:] - integral[:-k, k:] - integral[k:, :-k] + integral[:-k, :-k]
    ys, xs = np.nonzero(sums == k * k)
    return ys + pad, xs + pad


def box_inside(rng, allowed, size, pad):
    """Top-left (y, x) of a `size` square whose `pad`-grown box lies in `allowed`, or None."""
    ys, xs = box_candidates(allowed, size, pad)
    if ys.size == 0:
        return None
    j = int(rng.integers(ys.size))
    return int(ys[j]), int(xs[j])


def box_farthest(rng, allowed, size, pad, centre):
    """Like `box_inside`, but the square's centre as far from `centre` (y, x) as it can be
    (drawn at random among the places within 1 px of the farthest), or None."""
    ys, xs = box_candidates(allowed, size, pad)
    if ys.size == 0:
        return None
    dist = np.hypot(ys + (size - 1) / 2 - centre[0], xs + (size - 1) / 2 - centre[1])
    far = np.nonzero(dist >= dist.max() - 1)[0]
    j = int(far[rng.integers(far.size)])
    return int(ys[j]), int(xs[j])
