"""Every written TFLite file is builtin-only: no Flex (select-TF) or custom operator, which
LiteRT without the Flex delegate cannot run. The operator codes are read from the flatbuffer."""

import pytest
import tensorflow as tf

from rignet_keras.export.tflite import check_builtin_only, non_builtin_ops, operator_names
from rignet_keras.export.worker import run_job


class _CumulativeProduct(tf.Module):
    """A graph whose one op (Cumprod) has no LiteRT builtin: only Flex can run it."""

    @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32, name="x")])
    def cumprod(self, x):
        return {"y": tf.math.cumprod(x, axis=1)}


def _flex_file():
    module = _CumulativeProduct()
    function = module.cumprod.get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], module)
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS,
        tf.lite.OpsSet.SELECT_TF_OPS,
    ]
    return converter.convert()


@pytest.mark.export
def test_a_flex_file_is_refused_naming_the_op():
    content = _flex_file()
    assert operator_names(content) == ["FlexCumprod"]
    assert non_builtin_ops(content) == ["FlexCumprod"]
    with pytest.raises(ValueError) as error:
        check_builtin_only(content, "flex.tflite")
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("flex.tflite needs the Flex (select-TF) ops FlexCumprod,")


@pytest.mark.export
def test_a_conversion_that_needs_a_flex_op_fails_naming_it_and_writes_nothing(tmp_path):
    module = _CumulativeProduct()
    saved_model = tmp_path / "saved_model"
    tf.saved_model.save(
        module, str(saved_model), signatures={"ui_1": module.cumprod.get_concrete_function()}
    )
    output = tmp_path / "out.tflite"
    job = {
        "kind": "tflite",
        "saved_model": str(saved_model),
        "signature_keys": ["ui_1"],
        "precision": "float32",
        "output": str(output),
    }
    with pytest.raises(ValueError) as error:
        run_job(job)
    message = str(error.value)
    assert "\n" not in message
    assert "needs the TensorFlow ops Cumprod," in message and "builtin-only" in message
    assert not output.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["saved_model"]


@pytest.mark.export
def test_every_exported_file_is_builtin_only(exports):
    _, manifest, folder = exports.get("parallel")
    files = [a["file"] for a in manifest["artifacts"] if a["format"] == "tflite"]
    assert len(files) >= 6
    for name in files:
        content = (folder / name).read_bytes()
        assert "CONV_2D" in operator_names(content), name
        assert non_builtin_ops(content) == [], name
