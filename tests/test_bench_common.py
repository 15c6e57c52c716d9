"""`bench.common`: the benchmarks' shared options, statistics and result files; and every
benchmark's command line builds (its `--help` prints and exits 0)."""

import importlib
import json
import os
import pathlib

import numpy as np
import pytest

from bench import common
from bench.common import (
    bench_parser,
    command_line,
    format_mean_sd,
    mean_sd,
    median,
    spread,
    write_json,
    write_npz,
)

BENCHMARKS = sorted(
    path.stem
    for path in (pathlib.Path(common.REPOSITORY_ROOT) / "bench").glob("*.py")
    if path.stem not in ("__init__", "common", "long_range_files")
)


def options(parser):
    """{flag: (default, type)} of a parser's options, --help left out."""
    return {
        action.option_strings[0]: (action.default, action.type)
        for action in parser._actions
        if action.option_strings and action.dest != "help"
    }


def test_bench_parser_adds_the_options_given_with_their_defaults():
    parser = bench_parser(__doc__, out="x.json", threads=2, rounds=6, seeds=(0, 1))
    assert options(parser) == {
        "--out": ("x.json", None),
        "--threads": (2, int),
        "--rounds": (6, int),
        "--seeds": ([0, 1], int),
    }
    args = parser.parse_args(["--threads", "1", "--seeds", "3", "4"])
    assert (args.threads, args.seeds, args.out, args.rounds) == (1, [3, 4], "x.json", 6)
    assert parser.description == __doc__.split("\n\n")[0]


def test_bench_parser_none_is_a_default_and_help_texts_can_be_replaced():
    parser = bench_parser(__doc__, full_doc=True, output=None, helps={"output": "where it goes"})
    assert options(parser) == {"--output": (None, None)}
    assert "where it goes" in parser.format_help()
    assert parser.description == __doc__.strip()
    assert options(bench_parser(__doc__)) == {}
    with pytest.raises(ValueError, match="does not have: \\['repeat'\\]"):
        bench_parser(__doc__, helps={"repeat": "typo"})


def test_command_line_quotes_the_arguments():
    assert command_line("peak", []) == "python -m bench.peak"
    assert command_line("claims", ["--variants", "r18-Pu<6..4>", "--steps", 3]) == (
        "python -m bench.claims --variants 'r18-Pu<6..4>' --steps 3"
    )


def test_statistics():
    assert median([3, None, 1, 2]) == 2
    assert median([4, 1, 3, 2]) == 2.5
    assert median([4, 1, 3, 2], high=True) == 3  # sorted(x)[len(x) // 2]
    assert median([None]) is None
    assert mean_sd([0.5]) == (0.5, 0.0)
    mean, sd = mean_sd([0.1, 0.3, None], scale=100)
    assert mean == pytest.approx(20) and sd == pytest.approx(np.std([10, 30], ddof=1))
    assert mean_sd([None]) is None
    s = spread([0.5, None, 0.7], scale=100)
    assert (s["mean"], s["min"], s["max"], s["n"]) == (pytest.approx(60), 50, 70, 2)
    assert s["sd"] == pytest.approx(np.std([50, 70], ddof=1))
    assert spread([]) is None
    assert format_mean_sd(s) == "60.0 ± 14.1"
    assert format_mean_sd((0.6, 0.01), scale=100) == "60.0 ± 1.0"
    assert format_mean_sd(None) == "-"


def test_result_files_are_written_whole(tmp_path):
    path = tmp_path / "new" / "r.json"
    write_json(str(path), {"a": [1, 2]}, indent=1)
    assert json.loads(path.read_text()) == {"a": [1, 2]}
    assert path.read_text().endswith("\n")
    arrays = {"maps": np.arange(6, dtype=np.uint8).reshape(2, 3), "ms": 1.5}
    for compressed in (False, True):
        npz = tmp_path / f"r{compressed}.npz"
        write_npz(str(npz), arrays, compressed=compressed)
        with np.load(npz) as data:
            np.testing.assert_array_equal(data["maps"], arrays["maps"])
            assert float(data["ms"]) == 1.5
    assert sorted(os.listdir(tmp_path)) == ["new", "rFalse.npz", "rTrue.npz"]  # no temporaries
    assert os.listdir(tmp_path / "new") == ["r.json"]


@pytest.mark.parametrize("name", BENCHMARKS)
def test_every_benchmark_prints_its_help(name, capsys):
    module = importlib.import_module(f"bench.{name}")
    with pytest.raises(SystemExit) as exit_:
        module.main(["--help"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("usage: ")


def test_interleaved_latency_refuses_zero_rounds_before_any_call():
    called = []
    for rounds, per_round in ((0, 1), (2, 0)):
        with pytest.raises(ValueError, match=f"rounds={rounds}, per_round={per_round}"):
            common.interleaved_latency({"a": lambda: called.append(1)}, rounds, per_round)
    assert called == []
    latency = common.interleaved_latency({"a": lambda: called.append(1)}, 2, 3, warmup=1)
    assert latency["a"]["runs"] == 6 and len(called) == 7
