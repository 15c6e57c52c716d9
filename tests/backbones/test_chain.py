"""A backbone cut from another model, through the whole chain: every unroll mode, `profile`,
training, `.keras` in safe mode in a fresh process, and TFLite (float32, int8, step-wise) and
ONNX exports at ui 1-2 checked against the Keras model. One model per source of backbones; the
float32 TFLite export's own (strict) parity check on every backbone cut from a model."""

import keras
import numpy as np
import pytest

from rignet_keras.backbones.applications import APPLICATION_BACKBONES
from rignet_keras.backbones.hub import HUB_BACKBONES
from tests.harness import (
    SIZE,
    assert_exports_match_keras,
    assert_reloads_in_a_fresh_process,
    images,
)

NUM_CLASSES = 5
SOURCES = ["resnet50v2"]
PRECISIONS = {"resnet50v2": ("float32", "int8"), "hub_resnet18": ("float32", "int8")}
try:
    import keras_hub  # noqa: F401

    SOURCES.append("hub_resnet18")
    CUT_BACKBONES = sorted(APPLICATION_BACKBONES) + sorted(HUB_BACKBONES)
except ImportError:
    CUT_BACKBONES = sorted(APPLICATION_BACKBONES)

# The exporter checks parity on `synthetic_images(n, size, seed=0)` and takes the int8 ranges
# from `synthetic_images(8, size, seed=1)`; the first n images drawn with a seed are the same.
PARITY_SEED = 0
REPRESENTATIVE_SEED = 1


def _network(backbone, unroll_mode="parallel"):
    from rignet_keras import RIGNet

    return RIGNet(
        NUM_CLASSES,
        backbone=backbone,
        head_filters=32,
        unroll_mode=unroll_mode,
        feedback_blocks=(4, 6),
        num_iterations=2,
    )


@pytest.mark.large
@pytest.mark.parametrize("backbone", SOURCES)
def test_every_unroll_mode_and_profile(backbone):
    from rignet_keras.models.arguments import UNROLL_MODES
    from rignet_keras.profile import profile

    x = images(batch=1, height=45, width=53)
    for mode in UNROLL_MODES:
        model = _network(backbone, mode)
        out = keras.ops.convert_to_numpy(model(x, num_iterations=2))
        assert out.shape == (1, 45, 53, NUM_CLASSES), mode
        assert np.isfinite(out).all(), mode
        if model.can_step:
            states = list(model.iterate(x, num_iterations=2))
            assert len(states) == 2, mode
            assert np.isfinite(keras.ops.convert_to_numpy(states[-1].logits)).all(), mode
    model = _network(backbone)
    figures = profile(model, input_size=(64, 64))
    assert figures.macs[2] > figures.macs[1] > 0
    assert figures.parameters == model.count_params() > 0


@pytest.mark.subprocess
@pytest.mark.parametrize("backbone", SOURCES)
def test_train_save_load_fresh_process_and_export(backbone, tmp_path):
    from rignet_keras.export import export_model
    from rignet_keras.export.samples import synthetic_images
    from rignet_keras.models.calibration import calibrate_batch_norm
    from rignet_keras.preprocessing import normalize

    model = _network(backbone)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 48, 48, 3)).astype("float32")
    y = rng.integers(0, NUM_CLASSES, size=(2, 48, 48))
    model(x[:1])
    before = [np.array(w) for w in model.trainable_weights]
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(True))
    history = model.fit(x, y, epochs=3, batch_size=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    moved = [
        not np.array_equal(a, np.array(w))
        for a, w in zip(before, model.trainable_weights, strict=True)
    ]
    assert all(moved[:3]) and sum(moved) > 0.9 * len(moved)

    # Decided predictions for the parity checks (see tests/export/conftest.py), from batch-norm
    # statistics of the images the int8 ranges come from. A trained network's statistics
    # describe the data those images are drawn from; a random one's only the images they are
    # computed on. Calibrated on 4 other images, the random ResNet50V2 reaches logits of 8.6 on
    # the representative images against 2.4 when calibrated on them, and its int8 file agreed
    # on 0.904 (ui 1) and 0.872 (ui 2) of the labels, against 0.981 and 0.960 (floor 0.85).
    calibration = synthetic_images(8, SIZE, seed=REPRESENTATIVE_SEED)
    calibrate_batch_norm(model, normalize(calibration, model.preprocessing))
    probe = images(batch=1, height=41, width=45)
    assert_reloads_in_a_fresh_process({backbone: model}, probe, tmp_path)

    # The exporter checks every file against the model itself (strict: past tolerance it raises).
    folder = tmp_path / "export"
    manifest = export_model(
        model,
        folder,
        input_size=SIZE,
        formats=("tflite", "onnx"),
        uis=(1, 2),
        precisions=PRECISIONS[backbone],
        stepwise_precisions=("float32",),
        latency_runs=2,
    )
    signatures = [s for a in manifest["artifacts"] for s in a["signatures"] if "parity" in s]
    assert signatures and all(s["parity"]["passed"] for s in signatures)
    precisions = {a.get("precision") for a in manifest["artifacts"] if a["format"] == "tflite"}
    assert set(PRECISIONS[backbone]) <= precisions
    assert any("step" in {s["name"] for s in a["signatures"]} for a in manifest["artifacts"])

    assert_exports_match_keras(model, folder, what=backbone)


# The 50-layer ResNets' conversions are the slowest (resnet50v2 also runs the whole chain above,
# and the keras-hub ResNet-18/34 take the same path as hub_resnet50): selected with -m slow.
SLOW_PARITY = ("resnet50v2", "hub_resnet50")


@pytest.mark.parametrize(
    "backbone",
    [
        pytest.param(name, marks=pytest.mark.slow) if name in SLOW_PARITY else name
        for name in CUT_BACKBONES
    ],
)
@pytest.mark.export
def test_float32_tflite_parity_on_every_cut_backbone(backbone, tmp_path):
    """The exporter's own strict parity check (float32 TFLite, ui 1 and 2) on each backbone.

    The batch norms are calibrated on images that include the exporter's parity images. A
    random network's calibrated statistics hold on the images they come from only: measured on
    a random EfficientNetV2-B0 RIGNet calibrated on 4 other synthetic images, the activations on
    further images grow by about 1.2x per residual unit from stage 4 on (the batch norms of
    block5e and block6h see inputs 150 and 1900 standard deviations from their means); on the
    parity images the logits reach 154 (ui 1) and 735 (ui 2), and two float32 graphs of the same
    model (eager and `tf.function`) differ by 0.027 and 37 in the logits: TFLite parity failed with
    max |probability difference| 0.0045 (ui 1) and 1.0 (ui 2). Calibrated on the parity images,
    its logits stay under 7 and TFLite matches to 2.5e-5. MobileNetV3s (logits up to 85) and
    ConvNeXt-Tiny passed either way. Each export converts two TFLite signatures: about a
    minute (keras-hub ResNet-18) to six (MiT-B1) on a busy 2-core machine.
    """
    _assert_export_parity(backbone, "tflite", tmp_path)


# Cut backbones whose depthwise convolutions are grouped `Conv2D`s, and how many they have.
GROUPED_DEPTHWISE = {"convnext_tiny": 18, "hub_mobilenet_v3_small": 11}


@pytest.mark.export
@pytest.mark.parametrize("backbone", [b for b in GROUPED_DEPTHWISE if b in CUT_BACKBONES])
def test_onnx_parity_on_grouped_depthwise_backbones(backbone, tmp_path):
    """ConvNeXt (keras.applications) and keras-hub's MobileNet write their depthwise
    convolutions as grouped `Conv2D`s, which tf2onnx cannot convert; the exports trace them as
    depthwise ones, and the ONNX files of ui 1 and 2 pass the exporter's strict parity check."""
    from rignet_keras.export.layout import grouped_depthwise_convolutions

    model = _network(backbone)
    model.build((None, *SIZE, 3))
    assert len(grouped_depthwise_convolutions(model)) == GROUPED_DEPTHWISE[backbone]
    _assert_export_parity(backbone, "onnx", tmp_path)


def _assert_export_parity(backbone, fmt, tmp_path):
    """Exports a calibrated `_network(backbone)` to `fmt` at ui 1 and 2 (float32) and requires
    the exporter's strict parity check to pass on both signatures."""
    from rignet_keras.export import export_model
    from rignet_keras.export.samples import synthetic_images
    from rignet_keras.models.calibration import calibrate_batch_norm
    from rignet_keras.preprocessing import normalize

    model = _network(backbone)
    model.build((None, *SIZE, 3))
    calibration = synthetic_images(4, SIZE, seed=PARITY_SEED)
    calibrate_batch_norm(model, normalize(calibration, model.preprocessing))
    manifest = export_model(
        model,
        tmp_path / "export",
        input_size=SIZE,
        formats=(fmt,),
        uis=(1, 2),
        precisions=("float32",),
        stepwise=False,
        latency_runs=0,
    )
    parity = {
        s["name"]: s["parity"]
        for a in manifest["artifacts"]
        for s in a["signatures"]
        if "parity" in s
    }
    assert set(parity) == {"ui_1", "ui_2"}, (backbone, fmt, parity)
    for name, figures in parity.items():
        assert figures["passed"], (backbone, fmt, name, figures)
        assert figures["decided_share"] > 0.5, (backbone, fmt, name, "mostly ties")
