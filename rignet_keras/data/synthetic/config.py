"""How synthetic samples look (`SyntheticConfig`), the class marks' colours, and the dataset's
`DatasetInfo`."""

import colorsys
import dataclasses

import numpy as np

from rignet_keras.data.info import DatasetInfo

SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
OBJECT_SHAPES = ("blob", "bar")
MARK_POSITIONS = ("anywhere", "end")


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
    """How synthetic samples look.

    Args:
        image_size: (height, width) in pixels. Default (96, 96).
        num_classes: classes including the background (class 0). Default 5.
        objects_per_image: (min, max) number of objects. Default (1, 3).
        object_size: (min, max) object diameter as a fraction of min(height, width).
        mark_size: side of the class mark in pixels; None = max(3, min(height, width) // 16).
        distractors_per_image: (min, max) marks on the background.
        decoys_per_image: (min, max) striped blobs without a mark (background).
        clutter_per_image: (min, max) grey bars and lines on the background.
        void_border: width of the void (255) band either side of an object outline; 0 = none.
        object_shape: "blob" (default): ellipses or star-shaped polygons, `object_size` across;
            "bar": straight bars of random orientation, `object_size` long and `bar_width` wide.
            Decoys take the same shapes.
        bar_width: (min, max) width of a "bar" as a fraction of min(height, width).
        mark_position: "anywhere" (default): a random place inside the object; "end": as far
            from the object's centroid as the mark fits (one end of a bar, drawn at random).
    """

    image_size: tuple = (96, 96)
    num_classes: int = 5
    objects_per_image: tuple = (1, 3)
    object_size: tuple = (0.35, 0.55)
    mark_size: int | None = None
    distractors_per_image: tuple = (1, 3)
    decoys_per_image: tuple = (0, 1)
    clutter_per_image: tuple = (2, 5)
    void_border: int = 1
    object_shape: str = "blob"
    bar_width: tuple = (0.18, 0.25)
    mark_position: str = "anywhere"

    def __post_init__(self):
        for name in (
            "image_size",
            "objects_per_image",
            "object_size",
            "distractors_per_image",
            "decoys_per_image",
            "clutter_per_image",
            "bar_width",
        ):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if not 2 <= self.num_classes <= 255:
            raise ValueError(f"num_classes must be in 2..255; received {self.num_classes}")
        if min(self.image_size) < 32:
            raise ValueError(f"image_size must be at least 32x32; received {self.image_size}")
        if not 0 < self.object_size[0] <= self.object_size[1] <= 0.9:
            raise ValueError(
                f"object_size must be 0 < min <= max <= 0.9; received {self.object_size}"
            )
        if self.object_shape not in OBJECT_SHAPES:
            raise ValueError(
                f"object_shape must be one of {OBJECT_SHAPES}; received {self.object_shape!r}"
            )
        if self.mark_position not in MARK_POSITIONS:
            raise ValueError(
                f"mark_position must be one of {MARK_POSITIONS}; received {self.mark_position!r}"
            )
        if not 0 < self.bar_width[0] <= self.bar_width[1] <= 0.5:
            raise ValueError(f"bar_width must be 0 < min <= max <= 0.5; received {self.bar_width}")
        if self.object_shape == "bar" and self.bar_width[1] > self.object_size[0]:
            raise ValueError(
                f"bars must be longer than wide: object_size min {self.object_size[0]} < "
                f"bar_width max {self.bar_width[1]}"
            )
        # The narrowest object (an ellipse of axis ratio 0.6, or the narrowest bar) must hold the
        # mark, 1 px around it, and the void border plus 1 px on either side.
        need = self.resolved_mark_size + 2 + 2 * (self.void_border + 1)
        if self.object_shape == "bar":
            narrowest, what = self.bar_width[0] * min(self.image_size), "bar_width"
        else:
            narrowest, what = 0.6 * self.min_object_diameter, "object_size"
        if narrowest < need:
            raise ValueError(
                f"objects of {narrowest:.0f} px width are too small for a "
                f"{self.resolved_mark_size} px mark; raise {what} or lower mark_size"
            )

    @property
    def resolved_mark_size(self):
        """The mark side in pixels (`mark_size`, or its default)."""
        return self.mark_size or max(3, min(self.image_size) // 16)

    @property
    def min_object_diameter(self):
        return int(self.object_size[0] * min(self.image_size))

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        return cls(**d)


def class_colors(num_classes):
    """RGB uint8 (num_classes, 3): the mark colour of each class (row 0, background, is unused):
    saturated hues spaced evenly around the colour wheel."""
    colors = np.zeros((num_classes, 3), np.uint8)
    for c in range(1, num_classes):
        rgb = colorsys.hsv_to_rgb((c - 1) / (num_classes - 1), 1.0, 1.0)
        colors[c] = np.round(np.array(rgb) * 255)
    return colors


def synthetic_info(config=None):
    """`DatasetInfo` of the synthetic dataset under `config`."""
    config = config or SyntheticConfig()
    names = ("background",) + tuple(f"class_{c}" for c in range(1, config.num_classes))
    return DatasetInfo("synthetic", config.num_classes, "synthetic", names)
