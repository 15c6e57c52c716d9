"""Faults and interruptions of training, one test per row of what must hold afterwards.

- A non-finite training loss, validation log or weight stops the run with one
  `NonFiniteTrainingError` line naming the step and the last good state; no checkpoint or backup
  ever holds a non-finite value.
- A process killed (SIGKILL, through `RIGNET_FAULT_POINT`) at a named moment of an epoch and then
  resumed ends with the final weights, history, best/last checkpoints and checkpoint record of
  the uninterrupted run.
- What a killed run leaves (temporary files, a backup without its `state.json`) is removed at
  the next start, and nothing else.
"""

import io
import json
import os
import signal
import subprocess
import sys
import zipfile

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from rignet_keras.training.backup import ResumableBackup
from rignet_keras.training.checkpoints import TEMP_PREFIX, atomic_save, remove_stale_files
from rignet_keras.training.faults import FAULT_POINT_ENV
from rignet_keras.training.history import EpochHistory, read_history
from rignet_keras.training.nan_guard import NonFiniteTrainingError
from rignet_keras.training.trainer import NaNLossError
from tests.harness import learnable_arrays, learnable_dataset, make_trainer

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "fault_worker.py")


def h5_arrays(source):
    """{dataset path: array} of an HDF5 file (a path or a file object)."""
    arrays = {}
    with h5py.File(source, "r") as f:
        f.visititems(
            lambda name, obj: (
                arrays.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None
            )
        )
    return arrays


def keras_file_arrays(path):
    with zipfile.ZipFile(path) as archive:
        return h5_arrays(io.BytesIO(archive.read("model.weights.h5")))


def saved_arrays(run_dir):
    """{file: {dataset: array}} of every weights file a run keeps."""
    found = {}
    for folder in ("checkpoints", "backup"):
        names = os.listdir(run_dir / folder) if os.path.isdir(run_dir / folder) else []
        for name in sorted(names):
            path = run_dir / folder / name
            if name.endswith(".weights.h5"):
                found[f"{folder}/{name}"] = h5_arrays(path)
            elif name.endswith(".keras"):
                found[f"{folder}/{name}"] = keras_file_arrays(path)
    return found


def assert_all_finite(run_dir):
    files = saved_arrays(run_dir)
    for file, arrays in files.items():
        for name, value in arrays.items():
            if np.issubdtype(value.dtype, np.floating):
                assert np.isfinite(value).all(), (file, name)
    return files


def temporaries(run_dir):
    return sorted(
        os.path.relpath(os.path.join(root, name), run_dir)
        for root, _, names in os.walk(run_dir)
        for name in names
        if name.startswith(TEMP_PREFIX)
    )


# --------------------------------------------------------------------------------------------
# Non-finite values


def test_nan_training_loss_stops_with_one_line_naming_the_step_and_the_last_good_state(tmp_path):
    images, masks = learnable_arrays(16)
    images[8:12] = np.nan  # the third batch: step 3
    data = tf.data.Dataset.from_tensor_slices((images, masks)).batch(4)
    trainer = make_trainer(tmp_path, steps=6, steps_per_epoch=2, train_iterations=None)
    with pytest.raises(NonFiniteTrainingError) as error:
        trainer.fit(data)
    message = str(error.value)
    assert "\n" not in message
    assert "at step 3: the loss became nan" in message
    assert f"last good checkpoint: {tmp_path / 'checkpoints' / 'last.keras'} at step 2" in message
    assert f"latest backup: {tmp_path / 'backup'} at step 2" in message
    assert error.value.step == 3 and isinstance(error.value, NaNLossError)
    assert ResumableBackup.read_state(str(tmp_path / "backup"))["step"] == 2
    info = json.loads((tmp_path / "checkpoints" / "checkpoints.json").read_text())
    assert info["last"]["step"] == 2
    assert _history_epochs(tmp_path) == ["0"]
    good = keras.models.load_model(tmp_path / "checkpoints" / "last.keras", safe_mode=True)
    assert all(np.isfinite(w).all() for w in good.get_weights())
    assert_all_finite(tmp_path)


def _history_epochs(run_dir):
    lines = (run_dir / "history.csv").read_text().splitlines()
    return [line.split(",")[0] for line in lines[1:]]


def test_nan_validation_loss_with_a_finite_training_loss_stops_the_run(tmp_path):
    images, masks = learnable_arrays(8, seed=1)
    images[:4] = np.nan
    val = tf.data.Dataset.from_tensor_slices((images, masks)).batch(4)
    trainer = make_trainer(tmp_path, steps=6, steps_per_epoch=2, train_iterations=None)
    with pytest.raises(NonFiniteTrainingError, match=r"at step 2 \(epoch 1\): val_loss became nan"):
        trainer.fit(learnable_dataset(), val_data=val)
    # The epoch's end wrote nothing: no checkpoint, no history row.
    assert not os.path.exists(tmp_path / "checkpoints" / "last.keras")
    assert not os.path.exists(tmp_path / "history.csv")
    assert_all_finite(tmp_path)


def test_a_diverging_run_stops_and_leaves_only_finite_checkpoints(tmp_path):
    # lr 10 diverges after the first epoch (here: the validation loss becomes NaN at step 4
    # while the training loss is finite).
    trainer = make_trainer(
        tmp_path,
        steps=12,
        steps_per_epoch=2,
        learning_rate=10.0,
        warmup_steps=0,
        train_iterations=None,
    )
    val = learnable_dataset(num=8, seed=1)
    with pytest.raises(NonFiniteTrainingError) as error:
        trainer.fit(learnable_dataset(), val_data=val)
    assert error.value.step > 2, str(error.value)
    files = assert_all_finite(tmp_path)
    assert {"checkpoints/best.keras", "checkpoints/last.keras"} <= set(files)
    best = keras.models.load_model(tmp_path / "checkpoints" / "best.keras", safe_mode=True)
    assert np.isfinite(best.predict(val, verbose=0)).all()
    # One row per epoch that ended before the stop, none for the one that stopped.
    assert len(_history_epochs(tmp_path)) == (error.value.step - 1) // 2


class PoisonMovingVariance(keras.callbacks.Callback):
    """Puts a NaN into a batch norm's moving variance after step `step`: training-mode batch
    norm does not read it, so the loss stays finite while a weight is not."""

    def __init__(self, step):
        super().__init__()
        self.step = step

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations) == self.step:
            variable = next(v for v in self.model.weights if "moving_variance" in v.path)
            variable.assign(np.full(variable.shape, np.nan, "float32"))


def test_a_non_finite_weight_refuses_the_backup_and_stops_the_run(tmp_path):
    trainer = make_trainer(tmp_path, steps=8, steps_per_epoch=4, train_iterations=None)
    with pytest.raises(NonFiniteTrainingError) as error:
        trainer.fit(learnable_dataset(), callbacks=[PoisonMovingVariance(3)])
    message = str(error.value)
    assert "at step 4: non-finite weights or optimizer state in " in message
    assert (
        "moving_variance" in message
        and f"latest backup: {tmp_path / 'backup'} at step 2" in message
    )
    assert ResumableBackup.read_state(str(tmp_path / "backup"))["step"] == 2
    assert sorted(os.listdir(tmp_path / "backup")) == ["state-000000002.weights.h5", "state.json"]
    assert not os.path.exists(tmp_path / "checkpoints" / "last.keras")
    assert_all_finite(tmp_path)
    assert temporaries(tmp_path) == []


def test_atomic_save_refuses_non_finite_weights_and_keeps_the_previous_file(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="dense")])
    path = tmp_path / "model.weights.h5"
    atomic_save(model, path)
    before = path.read_bytes()
    kernel = model.get_layer("dense").kernel
    kernel.assign(np.array([[np.inf, 0]] * 4, "float32"))
    with pytest.raises(
        NonFiniteTrainingError,
        match=r"refusing to write .*model\.weights\.h5: "
        r"non-finite values in \w+/dense/kernel\Z",
    ):
        atomic_save(model, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.weights.h5"]


# --------------------------------------------------------------------------------------------
# History and stale files


def test_history_has_one_row_per_epoch_and_a_redone_epoch_replaces_its_row(tmp_path):
    path = tmp_path / "history.csv"
    history = EpochHistory(str(path))
    history.on_epoch_end(0, {"loss": np.float32(1.5), "lr": 0.01, "step": 2})
    history.on_epoch_end(1, {"loss": 1.25, "lr": 0.005, "step": 4, "val_loss": 2.0})
    history.on_epoch_end(2, {"loss": 1.0, "lr": 0.0, "step": 6})
    history.on_epoch_end(1, {"loss": 1.125, "lr": 0.005, "step": 4, "val_loss": 3.0})
    assert path.read_text() == (
        "epoch,loss,lr,step,val_loss\n0,1.5,0.01,2,NA\n1,1.125,0.005,4,3.0\n"
    )  # the redone epoch 1 replaced its row and dropped the later one
    assert read_history(str(path))["loss"] == [1.5, 1.125]
    history.truncate(1)
    assert path.read_text() == "epoch,loss,lr,step,val_loss\n0,1.5,0.01,2,NA\n"
    history.truncate(0)
    assert not path.exists()


def test_remove_stale_files_removes_only_what_a_killed_run_left(tmp_path):
    ours = [
        f"{TEMP_PREFIX}ab12cd_9.weights.h5",
        f"{TEMP_PREFIX}zz00zz00.keras",
        f"{TEMP_PREFIX}q1w2e3r4.json",
        f"{TEMP_PREFIX}x_y_z_12.csv",
    ]
    users = [
        ".tmp-notes.json",
        f"{TEMP_PREFIX}short.json",
        f"{TEMP_PREFIX}ab12cd_9.txt",
        "run.tmp",
        "state-7.weights.h5",
        "notes.txt",
    ]
    backups = ["state-000000002.weights.h5", "state-000000004.weights.h5"]
    for name in ours + users + backups:
        (tmp_path / name).write_text("x")
    (tmp_path / "state.json").write_text(json.dumps({"step": 2, "weights": backups[0]}))
    removed = remove_stale_files(str(tmp_path))
    # state-4 is newer than the state state.json names: a backup killed before its state.json.
    assert sorted(removed) == sorted(ours + backups[1:])
    assert sorted(os.listdir(tmp_path)) == sorted(users + backups[:1] + ["state.json"])
    (tmp_path / "state.json").unlink()  # no state.json: every state file is an orphan
    assert remove_stale_files(str(tmp_path)) == backups[:1]


# --------------------------------------------------------------------------------------------
# Kills


def run_worker(run_dir, result, fault=None, model="tiny"):
    """One `fault_worker.py` process, started as `train.deterministic` needs (oneDNN off)."""
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="0")
    env.pop(FAULT_POINT_ENV, None)
    if fault:
        env[FAULT_POINT_ENV] = fault
    proc = subprocess.run(
        [sys.executable, WORKER, str(run_dir), str(result), model],
        env=env,
        capture_output=True,
        timeout=300,
    )
    return proc.returncode, proc.stdout.decode(errors="replace")[-3000:] + proc.stderr.decode(
        errors="replace"
    )[-3000:]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """model -> (run folder, final weights) of the uninterrupted run, made on first use."""
    runs = {}

    def run(model):
        if model not in runs:
            run_dir = tmp_path_factory.mktemp(f"uninterrupted_{model}")
            code, output = run_worker(run_dir / "run", run_dir / "result.npz", model=model)
            assert code == 0, output
            runs[model] = run_dir / "run", dict(np.load(run_dir / "result.npz"))
        return runs[model]

    return run


# (fault point, the step the resumed run starts at, a temporary file the kill must leave)
KILLS = {
    "mid_epoch": ("after_step:7", 6, None),
    "after_backup": ("after_backup:12", 12, None),
    "during_validation": ("validation:8", 8, None),
    "during_checkpoint_write": ("checkpoint_write:8", 8, "checkpoints"),
    "after_history_row": ("after_history:4", 4, None),
}
# Every kill on the tiny model; two on a ResNet-18 RIGNet Pu<6..4> at ui 3 (the model whose
# runs differ without train.deterministic).
CASES = [("tiny", point) for point in KILLS] + [
    pytest.param("resnet18", point, marks=pytest.mark.large)
    for point in ("mid_epoch", "during_checkpoint_write")
]


@pytest.mark.subprocess
@pytest.mark.parametrize("model, point", CASES)
def test_a_kill_then_resume_ends_as_the_uninterrupted_run(model, point, uninterrupted, tmp_path):
    fault, resume_step, leftover_in = KILLS[point]
    reference_dir, reference = uninterrupted(model)
    run_dir = tmp_path / "run"
    code, output = run_worker(run_dir, tmp_path / "killed.npz", fault, model)
    assert code == -signal.SIGKILL, output
    assert not os.path.exists(tmp_path / "killed.npz")
    assert ResumableBackup.read_state(str(run_dir / "backup"))["step"] == resume_step
    if leftover_in:
        assert [os.path.dirname(t) for t in temporaries(run_dir)] == [leftover_in]

    code, output = run_worker(run_dir, tmp_path / "resumed.npz", model=model)
    assert code == 0, output
    resumed = dict(np.load(tmp_path / "resumed.npz"))
    assert (int(resumed["start_step"]), int(resumed["final_step"])) == (resume_step, 12)
    weights = sorted(set(reference) - {"start_step", "final_step"})
    assert len(weights) > 10 and sorted(set(resumed) - {"start_step", "final_step"}) == weights
    for name in weights:  # bit for bit: train.deterministic
        np.testing.assert_array_equal(resumed[name], reference[name], err_msg=name)
    assert (run_dir / "history.csv").read_text() == (reference_dir / "history.csv").read_text()
    for record in ("checkpoints/checkpoints.json", "backup/state.json"):
        assert json.loads((run_dir / record).read_text()) == json.loads(
            (reference_dir / record).read_text()
        ), record
    got, expected = saved_arrays(run_dir), saved_arrays(reference_dir)
    assert sorted(got) == sorted(expected)
    for file, arrays in expected.items():
        assert sorted(got[file]) == sorted(arrays), file
        for name, value in arrays.items():
            np.testing.assert_array_equal(got[file][name], value, err_msg=f"{file}: {name}")
    assert temporaries(run_dir) == []
