"""COCO-Stuff 10k (v1.1): reader of the official layout and its two label conventions.

Layout (under `data_dir`, or `data_dir/cocostuff-10k`, where `download` extracts it)::

    images/<id>.jpg
    annotations/<id>.mat          field `S`: (H, W), 0 = unlabeled, 1-91 things, 92-182 stuff
    imageLists/{train,test}.txt   9,000 and 1,000 ids

Label conventions (their mIoU values are not comparable; record the one used, `DatasetInfo`):

- "182": label = S - 1, and S = 0 -> 255. Classes 0..181, of which 11 never occur.
- "171": the 11 COCO thing ids never annotated (12, 26, 29, 30, 45, 66, 68, 69, 71, 83, 91 in the
  1-based 1..91 numbering) are dropped, and the remaining 171 values of S are renumbered 0..170 in
  order (things 0..79, stuff 80..170); S = 0 -> 255, and a dropped id, should it occur, -> 255.
"""

import os

import numpy as np
import scipy.io

from rignet_keras.data.errors import DatasetError, missing_path_error
from rignet_keras.data.info import IGNORE_LABEL, DatasetInfo
from rignet_keras.data.records import Record, drop_missing, read_id_list

LABEL_CONVENTIONS = ("182", "171")
COCOSTUFF_SPLITS = ("train", "test")
UNUSED_THING_IDS = (12, 26, 29, 30, 45, 66, 68, 69, 71, 83, 91)

# Names of S = 1..182 (COCO-Stuff `labels.txt`).
COCOSTUFF_NAMES_182 = (
    # things, 1..91
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "street sign",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "hat",
    "backpack",
    "umbrella",
    "shoe",
    "eye glasses",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "plate",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "mirror",
    "dining table",
    "window",
    "desk",
    "toilet",
    "door",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "blender",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
    "hair brush",
    # stuff, 92..182
    "banner",
    "blanket",
    "branch",
    "bridge",
    "building-other",
    "bush",
    "cabinet",
    "cage",
    "cardboard",
    "carpet",
    "ceiling-other",
    "ceiling-tile",
    "cloth",
    "clothes",
    "clouds",
    "counter",
    "cupboard",
    "curtain",
    "desk-stuff",
    "dirt",
    "door-stuff",
    "fence",
    "floor-marble",
    "floor-other",
    "floor-stone",
    "floor-tile",
    "floor-wood",
    "flower",
    "fog",
    "food-other",
    "fruit",
    "furniture-other",
    "grass",
    "gravel",
    "ground-other",
    "hill",
    "house",
    "leaves",
    "light",
    "mat",
    "metal",
    "mirror-stuff",
    "moss",
    "mountain",
    "mud",
    "napkin",
    "net",
    "paper",
    "pavement",
    "pillow",
    "plant-other",
    "plastic",
    "platform",
    "playingfield",
    "railing",
    "railroad",
    "river",
    "road",
    "rock",
    "roof",
    "rug",
    "salad",
    "sand",
    "sea",
    "shelf",
    "sky-other",
    "skyscraper",
    "snow",
    "solid-other",
    "stairs",
    "stone",
    "straw",
    "structural-other",
    "table",
    "tent",
    "textile-other",
    "towel",
    "tree",
    "vegetable",
    "wall-brick",
    "wall-concrete",
    "wall-other",
    "wall-panel",
    "wall-stone",
    "wall-tile",
    "wall-wood",
    "water-other",
    "waterdrops",
    "window-blind",
    "window-other",
    "wood",
)


def check_label_convention(label_convention):
    """Returns the convention as a string ("182" or "171"); raises `ValueError` otherwise."""
    conv = str(label_convention)
    if conv not in LABEL_CONVENTIONS:
        raise ValueError(
            f"label_convention must be one of {LABEL_CONVENTIONS}; received {label_convention!r}"
        )
    return conv


def cocostuff_label_map(label_convention="171"):
    """A lookup table (256,) uint8 from the raw value S to the training label (255 = ignore)."""
    conv = check_label_convention(label_convention)
    lut = np.full(256, IGNORE_LABEL, np.uint8)
    if conv == "182":
        lut[1:183] = np.arange(182)
    else:
        kept = [s for s in range(1, 183) if s not in UNUSED_THING_IDS]
        lut[kept] = np.arange(len(kept))
    return lut


def cocostuff_info(label_convention="171"):
    """`DatasetInfo` of COCO-Stuff 10k under a label convention (182 or 171 classes)."""
    conv = check_label_convention(label_convention)
    if conv == "182":
        names = COCOSTUFF_NAMES_182
    else:
        names = tuple(
            n for s, n in enumerate(COCOSTUFF_NAMES_182, start=1) if s not in UNUSED_THING_IDS
        )
    return DatasetInfo("cocostuff10k", len(names), conv, names)


def find_cocostuff_root(data_dir):
    """The COCO-Stuff 10k folder (the one holding `imageLists`) under `data_dir`."""
    data_dir = os.fspath(data_dir)
    candidates = [data_dir, os.path.join(data_dir, "cocostuff-10k")]
    for base in list(candidates):
        if os.path.isdir(base):
            candidates += sorted(
                os.path.join(base, d)
                for d in os.listdir(base)
                if os.path.isdir(os.path.join(base, d, "imageLists"))
            )
    for c in candidates:
        if os.path.isdir(os.path.join(c, "imageLists")):
            return c
    raise missing_path_error(
        "COCO-Stuff 10k folder (with imageLists/)",
        os.path.join(data_dir, "cocostuff-10k", "imageLists"),
        "cocostuff10k",
        data_dir,
    )


def cocostuff_records(data_dir, split="train", label_convention="171", *, on_bad_sample="raise"):
    """Records of a COCO-Stuff 10k split.

    Args:
        data_dir: folder that holds the dataset (see the module docstring).
        split: "train" (9,000 images) or "test" (1,000).
        label_convention: "171" or "182"; stored in each record's `mask_format`.
        on_bad_sample: "raise", "skip" or a `BadSampleLog` (which counts them), for listed
            samples whose files are missing.

    Returns:
        list of `Record` with `mask_format="cocostuff171"` or `"cocostuff182"`.
    """
    conv = check_label_convention(label_convention)
    if split not in COCOSTUFF_SPLITS:
        raise ValueError(f"split must be one of {COCOSTUFF_SPLITS}; received {split!r}")
    root = find_cocostuff_root(data_dir)
    list_path = os.path.join(root, "imageLists", f"{split}.txt")
    if not os.path.isfile(list_path):
        raise missing_path_error(
            f"COCO-Stuff split list {split!r}", list_path, "cocostuff10k", data_dir
        )
    records = [
        Record(
            i,
            os.path.join(root, "images", f"{i}.jpg"),
            os.path.join(root, "annotations", f"{i}.mat"),
            f"cocostuff{conv}",
        )
        for i in read_id_list(list_path)
    ]
    return drop_missing(records, on_bad_sample, f"COCO-Stuff {split}")


def read_cocostuff_raw(path):
    """The raw label map S (H, W) uint8 (0 = unlabeled, 1-182) of an `annotations/*.mat` file.

    Raises:
        DatasetError: naming `path`, if it is unreadable, has no `S`, or holds values above 182.
    """
    try:
        s = np.asarray(scipy.io.loadmat(path)["S"])
    except Exception as e:  # scipy raises several types for corrupt files
        raise DatasetError(f"cannot read COCO-Stuff annotation {path} (field S): {e}") from e
    if s.ndim != 2:
        raise DatasetError(f"COCO-Stuff annotation {path}: S has shape {s.shape}, not (H, W)")
    if s.size and (s.min() < 0 or s.max() > 182):
        raise DatasetError(
            f"COCO-Stuff annotation {path}: S holds values in [{s.min()}, {s.max()}]; "
            "expected 0 (unlabeled) to 182"
        )
    return s.astype(np.uint8)


def read_cocostuff_mask(path, label_convention="171"):
    """Training labels (H, W) uint8 of an `annotations/*.mat` file under a convention."""
    return cocostuff_label_map(label_convention)[read_cocostuff_raw(path)]
