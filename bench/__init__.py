"""The project's benchmarks; each module is run from the repository root as a script:

    python -m bench.NAME --help

`bench.common` holds what they share: the parser factory of their common options, statistics
(median, mean ± sd, latency figures), the timing loops, the machine description and the atomic
result-file writers. Their results are under bench/results/ and their tables in BENCHMARKS.md.
"""

from rignet_cli.tensorflow_logs import quiet_tensorflow

# The benchmarks are commands: TensorFlow's C++ log lines off, unless TF_CPP_MIN_LOG_LEVEL is set.
quiet_tensorflow()
