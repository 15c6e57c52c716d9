"""The project's benchmarks; each module is run from the repository root as a script:

    python -m bench.NAME --help

`bench.common` holds what they share (machine description, latency statistics, JSON results).
Their results are under bench/results/ and their tables in BENCHMARKS.md.
"""
