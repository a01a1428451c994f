"""The options several ``clnn bench`` commands share, declared once: ``--quick``, ``--dtype``,
an "only these cases" list, ``--repeat`` and ``--json``.

Example:
    >>> import argparse
    >>> p = argparse.ArgumentParser()
    >>> add_options(p, quick="a smoke run", dtype=(FLOATS, "float32", None),
    ...             repeat=(0, "timed runs (default 9)"))
    >>> a = p.parse_args(["--quick", "--dtype", "float64"])
    >>> a.quick, a.dtype, a.repeat, a.json
    (True, 'float64', 0, None)
"""

from __future__ import annotations

import argparse
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

FLOATS = ("float32", "float64")
JSON_HELP = "also write the results as JSON"


def add_options(parser: argparse.ArgumentParser, quick: Optional[str] = None,
                dtype: Optional[Tuple[Sequence[str], Optional[str], Optional[str]]] = None,
                only: Optional[Tuple[str, str, Sequence[str], str]] = None,
                repeat: Optional[Tuple[Any, str]] = None, json: str = JSON_HELP) -> None:
    """Add the shared options a bench takes; each argument left None leaves its option out.

    ``quick``: the help of ``--quick``. ``dtype``: (choices, default, help) of ``--dtype``.
    ``only``: (option, metavar, choices, what) of a list option that picks some of the cases
    (help "only these WHAT: ..."). ``repeat``: (default, help) of ``--repeat``. ``json``: the
    help of ``--json FILE``, always added."""
    if quick is not None:
        parser.add_argument("--quick", action="store_true", help=quick)
    if dtype is not None:
        choices, default, help_ = dtype
        parser.add_argument("--dtype", choices=list(choices), default=default, help=help_)
    if only is not None:
        flag, metavar, choices, what = only
        parser.add_argument(flag, nargs="+", metavar=metavar, choices=list(choices),
                            help=f"only these {what}: {' '.join(choices)}")
    if repeat is not None:
        default, help_ = repeat
        parser.add_argument("--repeat", type=int, default=default, help=help_)
    parser.add_argument("--json", metavar="FILE", help=json)


def device_dtypes(device, dtypes: Sequence[Any]) -> List[Any]:
    """The ``dtypes`` that ``device`` runs, in order; one line says so when float64 is left
    out (the device lacks cl_khr_fp64)."""
    keep = [d for d in dtypes if np.dtype(d) != np.float64 or device.fp64]
    if len(keep) < len(dtypes):
        print(f"float64 skipped: {device.name!r} lacks cl_khr_fp64")
    return keep
