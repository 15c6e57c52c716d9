"""The export wire format: tensor names, signature names and the manifest's identity.

The exporter (TensorFlow side) and the runtime (device side) both import these names from here,
so a graph written by one is always read by the other under the same names.

A "ui" graph has one signature per number of unrolled iterations, `ui_1`, `ui_2`, ..., each
taking `images` uint8 (1, H, W, 3) and returning `class_map` int32 (1, H, W) and `probabilities`
float32 (1, H, W, C). A step-wise graph has `init` (images -> prediction and recurrent state
tensors `state_<i>`) and `step` (state -> the next prediction and state).
"""

IMAGE_INPUT = "images"
CLASS_MAP = "class_map"
PROBABILITIES = "probabilities"
UI_PREFIX = "ui_"
INIT_SIGNATURE = "init"
STEP_SIGNATURE = "step"
STATE_PREFIX = "state_"
MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "rignet-export-manifest"
MANIFEST_VERSION = 1


def ui_signature(ui):
    """The signature name of the graph unrolled `ui` times: 3 -> "ui_3"."""
    return f"{UI_PREFIX}{int(ui)}"


def signature_ui(name):
    """The ui of a signature name: "ui_3" -> 3; None for any other name."""
    if name.startswith(UI_PREFIX) and name[len(UI_PREFIX) :].isdigit():
        return int(name[len(UI_PREFIX) :])
    return None
