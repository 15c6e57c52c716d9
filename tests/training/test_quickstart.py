"""The quickstart runs end to end (reduced size) and writes what the README promises."""

import json
import zipfile

import keras
import pytest

from rignet_keras.data.synthetic import SyntheticConfig
from rignet_keras.quickstart import QuickstartConfig, format_table, run_quickstart


@pytest.mark.export
def test_quickstart_fast(tmp_path, capsys):
    results = run_quickstart(QuickstartConfig.fast(), str(tmp_path), progress=False)
    out = capsys.readouterr().out
    assert "ResNet18-FCN" in out and "ResNet18-RIGNet Pu<6..4>, ui=2" in out
    assert format_table(results) in out
    assert set(results["models"]) == {"fcn", "rignet"}
    assert list(results["models"]["rignet"]["mIoU"]) == ["1", "2"]
    assert list(results["models"]["fcn"]["mIoU"]) == ["1"]
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["models"]["rignet"]["label"] == results["models"]["rignet"]["label"]
    model = keras.models.load_model(tmp_path / "rignet.keras", safe_mode=True)
    assert model.num_iterations == 2
    assert (tmp_path / "anytime_miou.png").is_file()
    assert len(list((tmp_path / "predictions" / "masks").iterdir())) == 2
    assert len(list((tmp_path / "predictions" / "gate_maps").glob("*.png"))) == 2
    assert (tmp_path / "rignet" / "checkpoints" / "best.keras").is_file()
    # the TFLite export holds every ui, was checked against Keras, and the runner can pick it
    manifest = json.loads((tmp_path / "export" / "manifest.json").read_text())
    assert (tmp_path / "export" / "rignet_float32.tflite").is_file()
    assert results["exports"]["tflite"].endswith("rignet_float32.tflite")
    assert "ui_2" in json.dumps(manifest)
    # the export section scored the TFLite file on the run's own val images (export.
    # quality_images): each ui's mIoU is the Keras evaluation's, the file being float32
    quality = results["exports"]["quality"]["rignet_float32.tflite"]
    assert set(quality) == {"ui_1", "ui_2"}
    for ui in ("1", "2"):
        assert abs(quality[f"ui_{ui}"] - results["models"]["rignet"]["mIoU"][ui]) < 0.005
    signatures = manifest["artifacts"][0]["signatures"]
    assert {s["quality"]["images"] for s in signatures if "quality" in s} == {8}
    # one MediaPipe-ready file per ui, labelled with the synthetic dataset's class names
    from rignet_keras.data import get_info
    from rignet_keras.export.segmenter_metadata import LABELS_FILE

    names = list(
        get_info(
            "synthetic",
            data_dir=None,
            synthetic_config=SyntheticConfig(image_size=(64, 64), num_classes=3, mark_size=6),
        ).class_names
    )
    assert names[0] == "background"  # the dataset's names, not the exporter's class_<i>
    mediapipe = {a["file"]: a for a in manifest["artifacts"] if a["kind"] == "mediapipe"}
    assert sorted(mediapipe) == [f"rignet_mediapipe_ui{k}_float32.tflite" for k in (1, 2)]
    for name, artifact in mediapipe.items():
        assert artifact["labels"] == names
        with zipfile.ZipFile(tmp_path / "export" / name) as archive:
            assert archive.read(LABELS_FILE).decode().split() == names
    # each model's folder is an ordinary run: its recorded configuration reproduces its numbers
    from rignet_keras.config import RunConfig
    from rignet_keras.training.experiment import evaluate_run

    recorded = RunConfig.load(str(tmp_path / "fcn" / "run_config.json"))
    assert recorded.data.source == "synthetic" and recorded.data.synthetic["image_size"] == [64, 64]
    again = evaluate_run(str(tmp_path / "fcn"), output_dir=str(tmp_path / "again"), progress=False)
    assert abs(again.scores[1]["mIoU"] - results["models"]["fcn"]["mIoU"]["1"]) < 1e-9
