"""NumPy references of the formulas in docs/DESIGN.md, written independently of the library."""

import numpy as np


def pool2x2_same(x, kind):
    """2x2/2 pooling with TF 'same' padding (pad after; padded cells excluded). x: (B, H, W, C)."""
    b, h, w, c = x.shape
    oh, ow = -(-h // 2), -(-w // 2)
    out = np.zeros((b, oh, ow, c), np.float64)
    for i in range(oh):
        for j in range(ow):
            window = x[:, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2, :]
            out[:, i, j] = window.mean(axis=(1, 2)) if kind == "avg" else window.max(axis=(1, 2))
    return out


def conv2d_same(x, kernel, bias):
    """Stride-1 'same' convolution. x: (B, H, W, Ci), kernel: (kh, kw, Ci, Co)."""
    kh, kw = kernel.shape[:2]
    ph, pw = kh // 2, kw // 2
    padded = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    b, h, w, _ = x.shape
    out = np.zeros((b, h, w, kernel.shape[-1]), np.float64)
    for di in range(kh):
        for dj in range(kw):
            out += np.einsum("bhwi,io->bhwo", padded[:, di : di + h, dj : dj + w], kernel[di, dj])
    return out + bias


def resize_bilinear_half_pixel(x, size):
    """Bilinear resize with half-pixel centres (TF2, TFLite, ONNX 'half_pixel'). x: (B, h, w, C)."""
    out_h, out_w = size
    in_h, in_w = x.shape[1:3]

    def axis(n_out, n_in):
        src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        src = np.clip(src, 0, n_in - 1)
        lo = np.floor(src).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, src - lo

    y0, y1, fy = axis(out_h, in_h)
    x0, x1, fx = axis(out_w, in_w)
    top = (
        x[:, y0][:, :, x0] * (1 - fx)[None, None, :, None]
        + x[:, y0][:, :, x1] * fx[None, None, :, None]
    )
    bottom = (
        x[:, y1][:, :, x0] * (1 - fx)[None, None, :, None]
        + x[:, y1][:, :, x1] * fx[None, None, :, None]
    )
    return top * (1 - fy)[None, :, None, None] + bottom * fy[None, :, None, None]


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def combine(x, g, kind):
    if kind == "mul_sigmoid":
        return x * sigmoid(g)
    if kind == "mul_tanh":
        return x * np.tanh(g)
    return np.maximum(x + g, 0.0)


def feedback_gate(x, y, conv_kernel, conv_bias, pooling, kind, reduce=None):
    """docs/DESIGN.md: g = Conv3x3(Pool(y)); g = resize(g, size(x)); out = combine(x, g)."""
    h = y.astype(np.float64)
    if pooling is not None:
        h = pool2x2_same(h, pooling)
    if reduce is not None:
        h = conv2d_same(h, *reduce)
    g = conv2d_same(h, conv_kernel, conv_bias)
    g = resize_bilinear_half_pixel(g, x.shape[1:3])
    return combine(x.astype(np.float64), g, kind)
