"""The `tfds.load` examples of docs/DATA.md run as written."""

import os
import re

import numpy as np

DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "docs", "DATA.md")


def tfds_blocks():
    with open(DOC, encoding="utf-8") as f:
        text = f.read()
    return [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "tfds." in b]


def test_data_md_tfds_examples_run(voc_tree, tmp_path, capsys):
    import tensorflow_datasets as tfds

    tfds.disable_progress_bar()
    blocks = tfds_blocks()
    assert len(blocks) == 2
    scope = {"data_dir": str(tmp_path / "tfds"), "downloads": voc_tree.root}
    for block in blocks:
        exec(compile(block, DOC, "exec"), scope)  # noqa: S102 (the documented example)
    out = capsys.readouterr().out
    assert "['background', 'class_1'" in out
    assert out.count("(96, 96, 3) (96, 96, 1)") == 2
    image, mask = scope["image"].numpy(), scope["mask"].numpy()
    assert image.dtype == np.uint8 and image.shape[-1] == 3
    assert mask.dtype == np.uint8 and mask.shape == image.shape[:2] + (1,)
