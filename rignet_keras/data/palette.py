"""The PASCAL VOC colour palette: to write palette PNG masks, and to colour masks for display.

The palette itself is the runtime's (`rignet_runtime.voc_palette`), so that masks written
by the training code and by the device runtime share one definition.
"""

import numpy as np

from rignet_runtime.images import voc_palette

__all__ = ["colorize", "voc_palette"]


def colorize(mask, palette=None):
    """Maps a label mask (H, W) of ints 0-255 to an RGB uint8 image (H, W, 3) with the palette."""
    palette = voc_palette() if palette is None else np.asarray(palette, np.uint8)
    return palette[np.asarray(mask).astype(np.uint8)]
