"""Trainer: the loss goes down, an interrupted run resumes exactly, every gate
gets gradients (random-ui and per-iteration losses), recomputation, multi-worker training."""

import json
import os
import socket
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from rignet_keras.training.backup import ResumableBackup
from rignet_keras.training.losses import segmentation_loss
from rignet_keras.training.task import RAN_OUT_OF_DATA, TrainingModel
from tests.harness import (
    Interrupt,
    InterruptAt,
    learnable_arrays,
    learnable_dataset,
    make_trainer,
    tiny_net,
)

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.large
def test_a_few_steps_reduce_the_loss(tmp_path):
    data = learnable_dataset(num=16)
    trainer = make_trainer(
        tmp_path, steps=16, train_iterations=None, warmup_steps=0, learning_rate=0.2
    )
    result = trainer.fit(data, val_data=data)
    assert result.final_step == 16
    losses = result.history["loss"]  # the mean training loss of each 4-step epoch
    assert losses[-1] < 0.9 * losses[0], losses
    assert all(b < a for a, b in zip(losses, losses[1:], strict=False)), losses
    assert len(losses) == 4 and "val_mIoU" in result.history
    for name in ("best.keras", "best.weights.h5", "last.keras", "last.weights.h5"):
        assert os.path.isfile(tmp_path / "checkpoints" / name)
    reloaded = keras.models.load_model(tmp_path / "checkpoints" / "last.keras", safe_mode=True)
    x = learnable_arrays(2)[0]
    np.testing.assert_allclose(reloaded(x), trainer.network(x), atol=1e-5)
    assert not [f for f in os.listdir(tmp_path / "checkpoints") if f.startswith(".tmp")]


@pytest.mark.large
def test_resume_after_interruption_matches_an_uninterrupted_run(tmp_path):
    data = learnable_dataset(num=24)  # 6 batches: the stream wraps around within the run
    straight = make_trainer(tmp_path / "straight")
    straight.fit(data)
    expected = straight.network.get_weights()

    first = make_trainer(tmp_path / "resumed")
    with pytest.raises(Interrupt):
        first.fit(data, callbacks=[InterruptAt(5)])  # backups at 2 and 4; step 5 is lost
    assert ResumableBackup.read_state(str(tmp_path / "resumed" / "backup"))["step"] == 4

    second = make_trainer(tmp_path / "resumed")  # a fresh process would build the same way
    result = second.fit(data)
    assert (result.start_step, result.final_step) == (4, 8)
    got = second.network.get_weights()
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # The optimizer state came back too: one more step from each stays equal.
    assert int(second.task.optimizer.iterations) == int(straight.task.optimizer.iterations) == 8


def gate_variables(network):
    return [v for v in network.trainable_variables if "gate" in v.path]


@pytest.mark.large
def test_random_ui_switch_case_gives_every_gate_its_gradient():
    x, y = learnable_arrays(2)
    task = TrainingModel(tiny_net(3, dropout=0.0), train_iterations=(1, 3))
    task.build(x.shape)
    gates = gate_variables(task.network)
    assert len(gates) == 6  # blocks 4, 5, 6: a kernel and a bias each

    @tf.function
    def grads_through_switch(index):
        with tf.GradientTape() as tape:
            branches = [lambda k=k: task._loss_at(x, y, k, None) for k in (1, 2, 3)]
            loss = tf.switch_case(index, branches)
        return loss, tape.gradient(loss, gates)

    for index, k in enumerate((1, 2, 3)):
        loss, grads = grads_through_switch(tf.constant(index))
        with tf.GradientTape() as tape:
            direct = task._loss_at(x, y, k, None)
        expected = tape.gradient(direct, gates)
        assert float(loss) == pytest.approx(float(direct), rel=1e-5)
        with tf.GradientTape() as tape:  # the control-flow-free method gives the same
            prefix = task._prefix_loss(x, y, tf.constant(index), None)
        prefix_grads = tape.gradient(prefix, gates)
        assert float(prefix) == pytest.approx(float(direct), rel=1e-5)
        for g, e, v in zip(grads, expected, gates, strict=True):
            if k == 1:  # iteration 1 never gates
                assert e is None and float(tf.reduce_max(tf.abs(g))) == 0.0
            else:
                assert float(tf.reduce_max(tf.abs(g))) > 0, (k, v.path)
                np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-7)
        for g, e in zip(prefix_grads, expected, strict=True):
            np.testing.assert_allclose(g, 0 if e is None else e, rtol=1e-4, atol=1e-7)


@pytest.mark.large
def test_random_ui_training_updates_the_gates_when_ui_is_drawn_above_one(tmp_path):
    trainer = make_trainer(tmp_path, steps=6, steps_per_epoch=6, weight_decay=0.0, seed=3)
    task = trainer.task
    draws = [task.iteration_choices()[int(task.sample_iteration_index(s))] for s in range(6)]
    assert set(draws) == {1, 2, 3}, draws  # the seed draws every ui within six steps
    gates = gate_variables(task.network)
    seen = [np.concatenate([g.numpy().ravel() for g in gates])]

    class Snapshot(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(np.concatenate([g.numpy().ravel() for g in gates]))

    trainer.fit(learnable_dataset(), callbacks=[Snapshot()])
    for step, k in enumerate(draws):
        moved = not np.array_equal(seen[step], seen[step + 1])
        # SGD momentum keeps moving the gates after a ui >= 2 step, so only the steps before the
        # first ui >= 2 draw must leave them alone.
        if k >= 2:
            assert moved, (step, draws)
        elif all(d == 1 for d in draws[: step + 1]):
            assert not moved, (step, draws)


def test_per_iteration_loss_reaches_every_gate():
    x, y = learnable_arrays(2)
    net = tiny_net(3, dropout=0.0, return_all_iterations=True)
    task = TrainingModel(net, iteration_loss_weights="uniform")
    task.build(x.shape)
    with tf.GradientTape() as tape:
        loss = task._loss_at(x, y, None, None)
    outputs = net(x, training=True)
    assert len(outputs) == 3
    grads = tape.gradient(loss, gate_variables(net))
    assert all(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)
    with pytest.raises(ValueError, match="return_all_iterations=True"):
        TrainingModel(tiny_net(3), iteration_loss_weights="uniform")
    manual = np.mean([float(segmentation_loss(y, o)) for o in outputs])
    assert float(loss) == pytest.approx(manual, rel=1e-5)


def test_recompute_gives_the_same_gradients():
    x, y = learnable_arrays(2)
    net = tiny_net(3, dropout=0.0)
    net.build(x.shape)
    variables = net.trainable_variables

    def grads():
        with tf.GradientTape() as tape:
            loss = segmentation_loss(y, net(x, training=True))
        return loss, tape.gradient(loss, variables)

    loss_a, grads_a = grads()
    task = TrainingModel(net, recompute=True)
    assert task.recompute
    loss_b, grads_b = grads()
    assert float(loss_a) == pytest.approx(float(loss_b), rel=1e-5)
    for a, b in zip(grads_a, grads_b, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.subprocess
def test_multi_worker_mirrored_strategy_two_workers_end_equal(tmp_path):
    import tensorflow_datasets as tfds

    import rignet_keras.data.builders  # noqa: F401 (registers rignet_synthetic)

    # A TFDS dataset in 4 files: each worker must read its own two (TFDS's input_context).
    tfds_dir = str(tmp_path / "tfds")
    builder = tfds.builder("rignet_synthetic", data_dir=tfds_dir)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(num_shards=4))
    workers = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    procs = []
    for index in range(2):
        env = dict(os.environ)
        env["TF_CONFIG"] = json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        )
        env["CUDA_VISIBLE_DEVICES"] = ""
        cmd = [
            sys.executable,
            os.path.join(HERE, "mwms_worker.py"),
            str(tmp_path / "run"),
            str(tmp_path / f"worker{index}.npz"),
            tfds_dir,
        ]
        procs.append(
            subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        )
    outputs = []
    for p in procs:
        try:
            out, _ = p.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
        outputs.append(out.decode(errors="replace")[-3000:])
    assert all(p.returncode == 0 for p in procs), "\n\n".join(outputs)
    results = [np.load(tmp_path / f"worker{i}.npz") for i in range(2)]
    assert [bool(r["chief"]) for r in results] == [True, False]
    assert all(int(r["replicas"]) == 2 and int(r["step"]) == 3 for r in results)
    assert np.isfinite(float(results[0]["loss"]))
    # Random ui with synchronised batch norm under 2 replicas: no control flow around the
    # all-reduce of the batch statistics.
    assert all(str(r["method"]) == "prefix" for r in results)
    weights = [
        [r[f"w{i}"] for i in range(sum(f.startswith("w") for f in r.files))] for r in results
    ]
    assert len(weights[0]) > 10
    for a, b in zip(*weights, strict=True):  # moving averages included (synchronised BN)
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert os.path.isfile(tmp_path / "run" / "checkpoints" / "last.keras")  # the chief wrote
    ids = [set(r["tfds_ids"].tolist()) for r in results]
    assert len(ids[0]) == len(ids[1]) == 100 and not ids[0] & ids[1]
    assert ids[0] | ids[1] == {f"syn_train_{i:06d}" for i in range(200)}


def test_resume_with_no_backup_says_so(tmp_path, capsys):
    """Asked to resume where there is no backup, the trainer says it starts at step 0."""
    trainer = make_trainer(str(tmp_path / "run"), steps=2, steps_per_epoch=2, warmup_steps=0)
    trainer.fit(learnable_dataset(8).repeat(), resume=True)
    err = capsys.readouterr().err
    assert f"note: no backup to resume in {tmp_path / 'run' / 'backup'}" in err
    assert "training starts at step 0" in err
    trainer = make_trainer(str(tmp_path / "fresh"), steps=2, steps_per_epoch=2, warmup_steps=0)
    trainer.fit(learnable_dataset(8).repeat())
    assert "no backup to resume" not in capsys.readouterr().err


def test_evaluating_data_of_unknown_length_warns_only_when_steps_were_asked(recwarn):
    # A dataset that skips bad samples (a filter) has an unknown length: its end is the end of
    # the evaluation, not data that "ran out".
    data = learnable_dataset(num=8).unbatch().filter(lambda image, mask: True).batch(4)
    assert int(data.cardinality()) == int(tf.data.UNKNOWN_CARDINALITY)
    task = TrainingModel(tiny_net(3), train_iterations=None)
    task.compile(optimizer="sgd")
    warnings.simplefilter("always")
    logs = task.evaluate(data, verbose=0, return_dict=True)
    assert np.isfinite(logs["loss"])
    assert not [w for w in recwarn if RAN_OUT_OF_DATA in str(w.message)]
    task.evaluate(data, steps=5, verbose=0)  # asks for more batches than there are
    assert [w for w in recwarn if RAN_OUT_OF_DATA in str(w.message)]
