"""Fixtures of the training tests: a tiny learnable dataset and one finished recipe run (the
helpers they use are in tests/harness.py)."""

import pytest

from tests.harness import SMALL_VOC_RUN, VOC_RECIPE, learnable_dataset, write_voc_fixture


@pytest.fixture
def tiny_dataset():
    return learnable_dataset()


@pytest.fixture(scope="session")
def voc_run(tmp_path_factory):
    """A finished two-step run of recipes/voc_r50.py (ResNet-18, ui = 6) on a tiny VOCdevkit:
    (data_dir, run folder). Shared by the recipe, command-line and configuration tests."""
    from rignet_keras.cli import load_recipe

    root = tmp_path_factory.mktemp("voc")
    data_dir = write_voc_fixture(str(root / "data"))
    out = root / "run"
    module = load_recipe(VOC_RECIPE)
    argv = ["--data-dir", data_dir, "--output-dir", str(out), *SMALL_VOC_RUN]
    assert module.recipe_main(module.EXPERIMENTS, argv) == 0
    return data_dir, out
