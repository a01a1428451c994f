"""clnn's version: the installed package's metadata, else (a source checkout that was never
installed) the ``version`` line of ``pyproject.toml`` beside the package.

Example:
    >>> from clnn._version import version
    >>> version().count(".") >= 2
    True
"""

from __future__ import annotations

import os
import re

__all__ = ["version"]


def version() -> str:
    """The version string, e.g. ``"0.1.0"`` (``"0+unknown"`` when neither source has it)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("clnn")
    except PackageNotFoundError:
        pass
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "pyproject.toml")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return "0+unknown"
    project = re.search(r"^\[project\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
    found = project and re.search(r'^version\s*=\s*"([^"]+)"', project.group(1), re.M)
    return found.group(1) if found else "0+unknown"
