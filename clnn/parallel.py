"""Data-parallel training, under its older name: it lives in :mod:`clnn.nn.parallel`.

Example:
    >>> from clnn.parallel import shares
    >>> shares(10, 4)
    [3, 3, 2, 2]
"""

from .nn.parallel import fit_data_parallel, replicate, shares

__all__ = ["fit_data_parallel", "shares", "replicate"]
