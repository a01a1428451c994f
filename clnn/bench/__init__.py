"""Benchmarks run by ``clnn bench NAME``: clnn beside numpy (or raw pyopencl, or PyTorch) in one
process, timed alternately so that the machine's speed swings hit both sides, reported as
medians.

One module per bench (``gemv``, ``gemm``, ``blas1``, ``batch``, ``train`` with ``mlp`` and
``distributed``, ``leaks``, ``ops``), each with ``add_arguments(parser, name)`` and
``run(args, name)``; what they share is said once: ``timing`` (the one timing loop and its
settings), ``data`` (the digits, MNIST-shaped samples, random matrices) and ``options`` (the
common options)."""
