"""Evaluation for every ui, test-time augmentation, gate maps and the pictures."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from rignet_keras.training.evaluate import evaluate, logits_per_iteration
from rignet_keras.training.gate_maps import gate_maps
from rignet_keras.training.metrics import confusion_matrix
from rignet_keras.training.visualize import save_predictions
from rignet_runtime import voc_palette
from tests.harness import TRAIN_CLASSES, learnable_arrays, tiny_rignet


def tiny(mode="parallel", ui=3, blocks=(4, 6)):
    return tiny_rignet(
        mode,
        "trainable",
        ui,
        num_classes=TRAIN_CLASSES,
        feedback_blocks=blocks,
        input_shape=(32, 32, 3),
    )


@pytest.mark.parametrize("mode", ["parallel", "multi_range", "sequential", "network_gated"])
def test_every_ui_equals_a_call_at_that_ui(mode):
    net = tiny(mode)
    x = learnable_arrays(2)[0]
    got = logits_per_iteration(net, x, [1, 2, 3])
    for k in (1, 2, 3):
        np.testing.assert_allclose(got[k], net(x, num_iterations=k), rtol=1e-5, atol=1e-5)


@pytest.mark.large
def test_evaluate_accumulates_one_matrix_per_ui():
    net = tiny()
    images, masks = learnable_arrays(6)
    data = tf.data.Dataset.from_tensor_slices((images, masks)).batch(4)  # batches of 4 and 2
    result = evaluate(net, data, progress=False, class_names=["a", "b", "c"])
    assert result.iterations == [1, 2, 3] and result.num_images == 6
    for k in (1, 2, 3):
        preds = tf.argmax(net(images, num_iterations=k), axis=-1)
        expected = confusion_matrix(masks, preds, TRAIN_CLASSES).numpy()
        np.testing.assert_array_equal(result.matrices[k], expected)
        assert result.matrices[k].sum() == (masks != 255).sum()
        assert 0 <= result.scores[k]["mIoU"] <= 1
    assert result.scores[1]["class_names"] == ["a", "b", "c"]
    tta = evaluate(net, data, iterations=[3], flip=True, scales=(0.75, 1.0), progress=False)
    assert tta.iterations == [3] and tta.matrices[3].sum() == result.matrices[3].sum()
    assert "ui" in result.table()


@pytest.mark.large
def test_results_plot_predictions_and_gate_maps(tmp_path):
    net = tiny(ui=3)
    images, masks = learnable_arrays(3)
    maps = gate_maps(net, images)
    assert sorted(maps) == sorted((f"block{k}", t) for k in (4, 5, 6) for t in (2, 3))
    for (name, _), m in maps.items():
        assert m.shape[0] == 3 and np.all((m > 0) & (m < 1)), name  # sigmoid, channel mean
    seq = gate_maps(tiny("sequential", ui=2), images)
    assert sorted(seq) == sorted((f"block{k}", 2) for k in (4, 5, 6))

    ids = tf.constant([b"img_a", b"img_b", b"img_c"])
    data = tf.data.Dataset.from_tensor_slices((images, masks, ids)).batch(2)
    paths = save_predictions(net, data, str(tmp_path / "pred"), num_images=3, preprocessing="torch")
    assert len(paths["masks"]) == 3 and len(paths["overlays"]) == 3
    with Image.open(tmp_path / "pred" / "masks" / "img_a.png") as im:
        assert im.mode == "P"
        assert np.array_equal(np.array(im.getpalette()[:63]).reshape(21, 3), voc_palette(21))
        assert set(np.unique(np.array(im))) <= {0, 1, 2}
    assert os.path.isfile(tmp_path / "pred" / "gate_maps" / "img_c.png")
    assert os.path.isfile(tmp_path / "pred" / "gate_maps" / "img_c" / "block5_ui3_spread.png")

    result = evaluate(net, data, progress=False)
    written = result.save(str(tmp_path / "eval"))
    saved = json.loads(open(written["json"]).read())
    assert saved["iterations"] == [1, 2, 3] and set(saved["scores"]) == {"1", "2", "3"}
    with Image.open(written["plot"]) as im:
        assert im.size[0] > 100


def test_evaluate_refuses_data_of_another_class_count():
    """The Python `evaluate` refuses, as `rignet evaluate` does, a model whose classes are not
    the data's."""
    model = tiny_rignet(num_classes=3)
    images, masks = learnable_arrays(4, 32)
    dataset = tf.data.Dataset.from_tensor_slices((images, masks)).batch(2)
    with pytest.raises(ValueError, match="the model predicts 3 classes; the data has 5"):
        evaluate(model, dataset, 5, progress=False)
