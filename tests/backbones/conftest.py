"""The backbone tests build large source models (ConvNeXt, EfficientNet, keras-hub): each test
frees Keras' global state after itself, so that the session's memory does not keep every one."""

import gc

import keras
import pytest


@pytest.fixture(autouse=True)
def _free_models():
    yield
    keras.backend.clear_session()
    gc.collect()
