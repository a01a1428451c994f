"""Benchmarks run by ``clnn bench NAME``: clnn beside numpy (or raw pyopencl) in one process,
timed alternately so that the machine's speed swings hit both sides, reported as medians."""
