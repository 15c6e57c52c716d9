"""`DatasetInfo`: what a label means. Store it with every result (mIoU values are only comparable
between runs that share `name`, `num_classes` and `label_convention`)."""

import dataclasses
import json

from rignet_keras.labels import IGNORE_LABEL


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Describes the labels of a dataset.

    Args:
        name: dataset name, e.g. "voc", "voc_aug", "cocostuff10k", "synthetic".
        num_classes: number of classes; labels are 0..num_classes-1, plus `ignore_label`.
        label_convention: how the labels were derived from the raw annotation, e.g. "voc",
            "182" or "171" (COCO-Stuff), "synthetic".
        class_names: tuple of `num_classes` names, index = label.
        ignore_label: the void label, ignored by losses and metrics (255).
    """

    name: str
    num_classes: int
    label_convention: str
    class_names: tuple
    ignore_label: int = IGNORE_LABEL

    def __post_init__(self):
        object.__setattr__(self, "class_names", tuple(self.class_names))
        if len(self.class_names) != self.num_classes:
            raise ValueError(
                f"class_names must have num_classes={self.num_classes} entries; "
                f"received {len(self.class_names)}"
            )

    def to_dict(self):
        """A JSON-ready dict (class names as a list)."""
        d = dataclasses.asdict(self)
        d["class_names"] = list(self.class_names)
        return d

    @classmethod
    def from_dict(cls, d):
        """Inverse of `to_dict`."""
        return cls(**d)

    def save(self, path):
        """Writes the info as JSON to `path`."""
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=2)

    @classmethod
    def load(cls, path):
        """Reads an info written by `save`."""
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))
