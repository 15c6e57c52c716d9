"""Every user error of the runner's command line: one line on stderr, exit status 2, no traceback,
found before any work (the manifest and images named here do not exist, so an error about them
would mean the flags were checked too late)."""

import pytest

import rignet_runtime as runtime

MISSING = ["no_such_image.png", "--manifest", "no_such_export"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--threads", "0"], "--threads must be >= 1; received 0"),
        (["--threads", "two"], "argument --threads: invalid int value: 'two'"),
        (["--ui", "0"], "--ui must be >= 1; received 0"),
        (["--ui", "1.5"], "argument --ui: invalid int value: '1.5'"),
        (["--budget-ms", "0"], "--budget-ms must be a positive number"),
        (["--budget-ms", "-5"], "--budget-ms must be a positive number"),
        (["--budget-ms", "nan"], "--budget-ms must be a positive number"),
        (["--budget-ms", "inf"], "--budget-ms must be a positive number"),
        (["--deadline-ms", "-1"], "--deadline-ms must be a positive number"),
        (["--deadline-ms", "10", "--max-iterations", "0"], "--max-iterations must be >= 1"),
        (
            ["--deadline-ms", "10", "--stable-tolerance", "1.5"],
            "--stable-tolerance must be in 0..1",
        ),
        (["--alpha", "1.5"], "--alpha must be in 0..1; received 1.5"),
        (["--alpha", "nan"], "--alpha must be in 0..1"),
        (["--max-iterations", "3"], "--max-iterations applies to --deadline-ms runs only"),
        (["--no-early-stop"], "--no-early-stop applies to --deadline-ms runs only"),
        (["--stable-tolerance", "0.1"], "--stable-tolerance applies to --deadline-ms runs only"),
        (["--ui", "2", "--budget-ms", "9"], "not allowed with argument --ui"),
        (["--runs", "5"], "--runs sets the benchmark's timed runs; add --benchmark"),
        (["--write-manifest", "x.json"], "--write-manifest records benchmark latencies"),
        (["--benchmark", "--runs", "0"], "--runs must be >= 1; received 0"),
        (["--benchmark", "--ui", "2"], "--benchmark times every graph; --ui does not apply"),
    ],
)
def test_bad_flag_is_one_line_and_exit_2(args, message, capsys):
    with pytest.raises(SystemExit) as exited:
        status = runtime.main(MISSING + args)
        raise SystemExit(status)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: ") and message in err, err
    assert "Traceback" not in err and "no_such" not in err


def test_model_flags_that_need_a_manifest(capsys):
    status = runtime.main(["a.png", "--model", "m.tflite", "--precision", "int8"])
    assert status == 2
    assert "--precision chooses among a manifest's graphs; it needs --manifest" in (
        capsys.readouterr().err
    )
    status = runtime.main(["--model", "m.tflite", "--benchmark", "--write-manifest", "x.json"])
    assert status == 2
    assert "--write-manifest copies a manifest; it needs --manifest" in capsys.readouterr().err


def test_missing_source_and_inputs(capsys):
    with pytest.raises(SystemExit) as exited:
        runtime.main(["a.png"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--model" in err and "--manifest" in err
    assert runtime.main(["--manifest", "no_such_export"]) == 2
    assert "give an image or a folder of images" in capsys.readouterr().err


@pytest.mark.export
def test_unwritable_output_dir_is_one_line(exports, tmp_path, capsys):
    _, _, folder = exports.get("parallel")
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    image = tmp_path / "a.png"
    image.write_bytes(b"never read: the output folder is refused first")
    status = runtime.main([str(image), "--manifest", str(folder), "--output-dir", str(blocker)])
    assert status == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        f"error: --output-dir {str(blocker)!r} cannot be created (File exists)"
    ]
