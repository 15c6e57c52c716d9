"""The PASCAL VOC colour palette: to write palette PNG masks, and to colour masks for display."""

import numpy as np


def voc_palette(num_colors=256):
    """The VOC palette as a uint8 array (num_colors, 3); index 255 is (224, 224, 192)."""
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


def colorize(mask, palette=None):
    """Maps a label mask (H, W) of ints 0-255 to an RGB uint8 image (H, W, 3) with the palette."""
    palette = voc_palette() if palette is None else np.asarray(palette, np.uint8)
    return palette[np.asarray(mask).astype(np.uint8)]
