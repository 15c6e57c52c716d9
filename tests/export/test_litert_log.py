"""`runtime/litert_log`: LiteRT's routine INFO lines are left out of stderr, every other line
of its native log passes, also when the call raises."""

import os

import pytest

from rignet_runtime.litert_log import without_routine_lines

ROUTINE = (
    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
    "INFO: [accelerator_registry.cc:43] DestroyAccelerator: ptr=0x55, name=CpuAccelerator\n"
)
OTHER = "WARNING: a delegate could not be applied\nERROR: node 3 failed\n"


def _native_write(text):
    os.write(2, text.encode())  # as LiteRT's C++ logger does: past sys.stderr


def test_routine_lines_are_left_out_and_the_others_pass(capfd):
    assert without_routine_lines(lambda: _native_write(ROUTINE + OTHER) or 7) == 7
    assert capfd.readouterr().err == OTHER


def test_the_log_of_a_failed_call_still_reaches_stderr(capfd):
    def fail():
        _native_write(ROUTINE + OTHER)
        raise RuntimeError("cannot load")

    with pytest.raises(RuntimeError, match="cannot load"):
        without_routine_lines(fail)
    assert capfd.readouterr().err == OTHER
