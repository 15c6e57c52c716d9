"""The anytime stopping rule: its bookkeeping on hand-made sequences, its refusals, and real
step-wise TFLite runs stopped by each of its tests (library and command line)."""

import numpy as np
import pytest
from PIL import Image

import rignet_runtime as runtime
from rignet_runtime import RunnerError
from rignet_runtime.stopping import DEFAULT_STOPPING, StoppingRule
from tests.harness import SIZE, fresh_images, tiny_rignet


def _probs(top, num_classes=3, shape=(2, 5)):
    """(H, W, C) probabilities whose top probability is `top` (an (H, W) array or a number)."""
    top = np.broadcast_to(np.asarray(top, np.float64), shape)
    rest = (1.0 - top) / (num_classes - 1)
    probs = np.repeat(rest[..., None], num_classes, axis=-1)
    probs[..., 0] = top
    return probs


def _maps(*changes, shape=(2, 5)):
    """Class maps after iterations 1, 2, ...: iteration k differs from k - 1 in `changes[k-2]`
    pixels (out of 10)."""
    maps = [np.zeros(shape, np.int32)]
    for n in changes:
        nxt = maps[-1].copy().reshape(-1)
        nxt[:n] = 1 - nxt[:n]
        maps.append(nxt.reshape(shape))
    return maps


def test_statistics_are_shares_of_the_image():
    rule = StoppingRule(confidence=0.9)
    top = np.array([[0.95, 0.5, 0.9, 0.89, 0.99], [1.0, 0.2, 0.95, 0.95, 0.95]])
    prev, now = _maps(3)
    stats = rule.statistics(now, _probs(top), prev)
    assert stats == {"changed": 0.3, "uncertain": pytest.approx(0.3)}  # 0.5, 0.89, 0.2
    assert rule.statistics(now, _probs(top))["changed"] is None


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        # changes between iterations: 4, 2, 0, 0 of 10 pixels; top probability per iteration
        # 0.5, 0.8, 0.92, 0.95, 0.99 (every pixel alike).
        (StoppingRule("stable", stable_tolerance=0.0), (4, "stable")),
        (StoppingRule("stable", stable_tolerance=0.2), (3, "stable")),
        (StoppingRule("stable", stable_tolerance=0.4), (2, "stable")),  # <= is inclusive
        (StoppingRule("confident", confidence=0.9, uncertain_tolerance=0.0), (3, "confident")),
        (StoppingRule("confident", confidence=0.95, uncertain_tolerance=0.0), (4, "confident")),
        (StoppingRule("confident", confidence=0.5, uncertain_tolerance=0.0), (1, "confident")),
        (
            StoppingRule("confident", confidence=0.999, uncertain_tolerance=0.0),
            (5, "max_iterations"),
        ),
        (StoppingRule("confident", confidence=0.999, uncertain_tolerance=1.0), (1, "confident")),
        # both: confident from 3, stable (<= 0.2) from 3; stable (0) from 4, confident (0.99) at 5
        (StoppingRule("both", 0.2, 0.9, 0.0), (3, "stable+confident")),
        (StoppingRule("both", 0.0, 0.99, 0.0), (5, "stable+confident")),
        (StoppingRule("both", 0.4, 0.95, 0.0), (4, "stable+confident")),
        # either: stable (0.4) at 2 before confident (0.9) at 3; confident (0.5) at init
        (StoppingRule("either", 0.4, 0.9, 0.0), (2, "stable")),
        (StoppingRule("either", 0.0, 0.9, 0.0), (3, "confident")),
        (StoppingRule("either", 0.0, 0.95, 0.0), (4, "stable+confident")),
        (StoppingRule("none"), (5, "max_iterations")),
    ],
)
def test_replay_stops_where_each_test_first_holds(rule, expected):
    maps = _maps(4, 2, 0, 0)
    probs = [_probs(p) for p in (0.5, 0.8, 0.92, 0.95, 0.99)]
    assert rule.replay(maps, probs) == expected


def test_confidence_counts_pixels_not_the_mean():
    """One uncertain object in a confident image: the mean top probability is high, but the
    share of uncertain pixels says the answer is not settled."""
    top = np.full((10, 10), 0.99)
    top[:3, :4] = 0.4  # 12% of the image undecided
    rule = StoppingRule("confident", confidence=0.9, uncertain_tolerance=0.05)
    assert top.mean() > 0.9
    assert rule.decide(rule.statistics(np.zeros((10, 10)), _probs(top, shape=(10, 10)))) is None
    loose = StoppingRule("confident", confidence=0.9, uncertain_tolerance=0.12)
    stats = loose.statistics(np.zeros((10, 10)), _probs(top, shape=(10, 10)))
    assert loose.decide(stats) == "confident"


def test_stability_cannot_fire_after_init():
    rule = StoppingRule("stable", stable_tolerance=1.0)
    assert rule.decide({"changed": None, "uncertain": 0.0}) is None
    assert rule.decide({"changed": 1.0, "uncertain": 1.0}) == "stable"
    both = StoppingRule("both", 1.0, 0.5, 1.0)
    assert both.decide({"changed": None, "uncertain": 0.0}) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"test": "stabel"}, "stopping test must be one of"),
        ({"stable_tolerance": -0.1}, "stable_tolerance must be in 0..1; received -0.1"),
        ({"stable_tolerance": 1.5}, "stable_tolerance must be in 0..1"),
        ({"confidence": float("nan")}, "confidence must be in 0..1"),
        ({"uncertain_tolerance": 2}, "uncertain_tolerance must be in 0..1"),
        ({"confidence": True}, "confidence must be a number in 0..1"),
        ({"confidence": "0.9"}, "confidence must be a number in 0..1"),
    ],
)
def test_bad_thresholds_are_refused(kwargs, message):
    with pytest.raises(RunnerError, match=message.replace("(", r"\(")):
        StoppingRule(**kwargs)


@pytest.mark.parametrize("edge", [0.0, 1.0])
def test_threshold_edges_are_accepted(edge):
    rule = StoppingRule("both", edge, edge, edge)
    assert (rule.stable_tolerance, rule.confidence, rule.uncertain_tolerance) == (edge,) * 3


MISSING = ["no_such_image.png", "--manifest", "no_such_export", "--deadline-ms", "10"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--confidence", "1.5"], "--confidence must be in 0..1; received 1.5"),
        (["--confidence", "nan"], "--confidence must be in 0..1"),
        (["--uncertain-tolerance", "-1"], "--uncertain-tolerance must be in 0..1"),
        (["--stable-tolerance", "2"], "--stable-tolerance must be in 0..1"),
        (["--stop", "sure"], "argument --stop: invalid choice: 'sure'"),
        (["--stop", "confident", "--no-early-stop"], "--no-early-stop and --stop confident"),
    ],
)
def test_bad_stopping_flags_are_one_line_and_exit_2(args, message, capsys):
    try:
        status = runtime.main(MISSING + args)
    except SystemExit as exited:  # argparse's own errors
        status = exited.code
    assert status == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert message in err and "Traceback" not in err, err


@pytest.mark.parametrize(
    "flag", ["--stop", "--confidence", "--uncertain-tolerance", "--stable-tolerance"]
)
def test_stopping_flags_need_a_deadline(flag, capsys):
    value = "confident" if flag == "--stop" else "0.5"
    status = runtime.main(["no_such_image.png", "--manifest", "no_such_export", flag, value])
    assert status == 2
    assert f"{flag} applies to --deadline-ms runs only" in capsys.readouterr().err


# -- real step-wise TFLite runs -------------------------------------------------------------------


@pytest.fixture(scope="module")
def stepwise_export(tmp_path_factory):
    from rignet_keras.export import export_model

    folder = tmp_path_factory.mktemp("stopping") / "out"
    manifest = export_model(
        tiny_rignet("parallel", backbone="tiny", calibrate=True, seed=0),
        folder,
        input_size=SIZE,
        uis=(1, 2),
        precisions=("float32",),
        stepwise_iterations=3,
        latency_runs=0,
    )
    return manifest, folder


@pytest.mark.parametrize(
    ("rule", "iterations", "reason"),
    [
        (StoppingRule("stable", stable_tolerance=1.0), 2, "stable"),
        (StoppingRule("confident", confidence=0.0), 1, "confident"),
        (StoppingRule("both", 1.0, 0.0, 0.0), 2, "stable+confident"),
        (StoppingRule("either", 1.0, 1.0, 0.0), 2, "stable"),
        (StoppingRule("confident", confidence=1.0, uncertain_tolerance=0.0), 4, "max_iterations"),
        (StoppingRule("none"), 4, "max_iterations"),
    ],
)
@pytest.mark.export
def test_tflite_anytime_run_stops_by_each_test(stepwise_export, rule, iterations, reason):
    _, folder = stepwise_export
    anytime = runtime.AnytimeSegmenter(folder / "rignet_stepwise_float32.tflite")
    image = fresh_images(1)[0]
    result = anytime.run(image, max_iterations=4, stopping=rule)
    assert (result.iterations, result.stop_reason) == (iterations, reason)
    assert len(result.uncertain) == result.iterations
    assert len(result.changed) == result.iterations - 1
    # The recorded statistics are the rule's own, on the outputs returned.
    expected = np.mean(result.probabilities.max(-1) < rule.confidence)
    assert result.uncertain[-1] == pytest.approx(expected)


@pytest.mark.export
def test_tflite_statistics_match_a_replay_of_the_same_outputs(stepwise_export):
    _, folder = stepwise_export
    anytime = runtime.AnytimeSegmenter(folder / "rignet_stepwise_float32.tflite")
    image = fresh_images(1, seed=3)[0]
    out, state = anytime.init(image)
    maps, probs = [out["class_map"][0]], [out["probabilities"][0]]
    for _ in range(3):
        out, state = anytime.step(state)
        maps.append(out["class_map"][0])
        probs.append(out["probabilities"][0])
    rule = StoppingRule("stable", stable_tolerance=0.0)
    result = anytime.run(image, max_iterations=4, stopping=StoppingRule("none"))
    changed = [float(np.mean(a != b)) for a, b in zip(maps[1:], maps[:-1], strict=True)]
    assert result.changed == pytest.approx(changed)
    k, reason = rule.replay(maps, probs)
    live = anytime.run(image, max_iterations=4, stopping=rule)
    assert (live.iterations, live.stop_reason) == (k, reason)


@pytest.mark.export
def test_old_stability_arguments_still_work_but_not_with_a_rule(stepwise_export):
    _, folder = stepwise_export
    anytime = runtime.AnytimeSegmenter(folder / "rignet_stepwise_float32.tflite")
    image = fresh_images(1)[0]
    assert anytime.run(image, max_iterations=3, stop_when_stable=False).iterations == 3
    assert anytime.run(image, max_iterations=3, stable_tolerance=1.0).stop_reason == "stable"
    with pytest.raises(RunnerError, match="not both"):
        anytime.run(image, stopping=DEFAULT_STOPPING, stable_tolerance=0.5)


@pytest.mark.export
def test_runner_command_line_stops_by_the_flags(stepwise_export, tmp_path, capsys):
    _, folder = stepwise_export
    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.fromarray(fresh_images(1)[0]).save(inputs / "a.png")
    common = [str(inputs), "--manifest", str(folder), "--deadline-ms", "1e6"]
    common += ["--output-dir", str(tmp_path / "out"), "--no-overlay"]
    flags = ["--stop", "confident", "--confidence", "0", "--uncertain-tolerance", "0.05"]
    assert runtime.main(common + flags) == 0
    out = capsys.readouterr().out
    assert "stop when confident (<= 0.05 of the pixels below probability 0)" in out
    assert "1 iterations (confident)" in out
    flags = ["--stop", "both", "--stable-tolerance", "1", "--confidence", "0"]
    assert runtime.main(common + flags) == 0
    assert "2 iterations (stable+confident)" in capsys.readouterr().out
    assert runtime.main(common + ["--no-early-stop", "--max-iterations", "3"]) == 0
    assert "3 iterations (max_iterations)" in capsys.readouterr().out
