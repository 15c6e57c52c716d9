"""The model an export starts from: a `.keras` file, optionally with the weights of another file.

The file is loaded by the package's one RIGNet loader (`rignet_keras.models.loading.load_rignet`,
safe mode, one-line errors naming the file); this module adds only a `.weights.h5` file loaded
into it (`export/export_model.py --weights`).
"""

import os

from rignet_keras.models.loading import first_line
from rignet_keras.models.loading import load_rignet as load_saved_rignet


def load_rignet(path, weights=None):
    """Loads a RIGNet from a `.keras` file (safe mode), optionally with other weights.

    Args:
        path: a `.keras` file holding a `RIGNet`.
        weights: None, or a `.weights.h5` file to load into it.

    Raises:
        ValueError: the file does not exist, is not a Keras archive, holds another model, or its
            weights (or `weights`) do not fit the architecture; the message names the file.
    """
    model = load_saved_rignet(path)
    if weights is not None:
        weights = os.fspath(weights)
        if not os.path.isfile(weights):
            raise ValueError(f"weights file {weights!r} does not exist")
        try:
            model.load_weights(weights)
        except Exception as error:  # noqa: BLE001
            raise ValueError(
                f"the weights in {weights!r} do not fit the RIGNet of {path!r}: {first_line(error)}"
            ) from error
    return model
