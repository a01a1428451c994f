"""Saving and loading networks: architecture and weights in one ``.npz``, written atomically.

The file holds ``clnn_format`` (``"clnn.nn.Network"``), ``clnn_version`` (format version 1),
``config`` (JSON: loss, dtype, layers) and ``layer{i}.weights`` / ``layer{i}.bias`` arrays,
so other tools can read the weights with plain numpy. Saving writes a temporary file in the
same folder and renames it over the target, so a crash never leaves a damaged file.

Example:
    >>> import clnn, os, tempfile
    >>> from clnn.nn import Dense, Network
    >>> path = os.path.join(tempfile.mkdtemp(), "net.npz")
    >>> with clnn.Runtime("cpu") as rt:
    ...     Network(rt, [Dense(3, 2, "tanh")], seed=0).save(path)
    ...     print(clnn.load(path, rt))
    <clnn.nn.Network [Dense(3, 2, activation='tanh')], loss='mse', float32, 8 parameters>
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import Any

import numpy as np

from ..atomic import atomic_write
from ..errors import ClnnError

__all__ = ["save", "load", "NetworkFileError", "FORMAT", "VERSION"]

FORMAT = "clnn.nn.Network"
VERSION = 1


class NetworkFileError(ClnnError, ValueError):
    """A file that is not a readable clnn network (missing, damaged, foreign or too new), or
    a path a network cannot be saved to (its folder does not exist)."""


def save(net, path: Any) -> None:
    """Write ``net`` (architecture and weights) to ``path`` atomically, with the permissions
    ``open(path, "wb")`` would give (those of the file it replaces, or 0o666 less the umask).
    A missing folder raises :class:`NetworkFileError` naming ``path``; other ``OSError`` errors
    (no permission, disk full) name ``path`` too and leave any old file intact."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise NetworkFileError(f"cannot save a clnn network to {path!r}: it is a folder")
    if not os.path.isdir(folder):
        raise NetworkFileError(f"cannot save a clnn network to {path!r}: the folder "
                               f"{folder!r} does not exist")
    arrays = {"clnn_format": np.array(FORMAT), "clnn_version": np.array(VERSION),
              "config": np.array(json.dumps(net.config()))}
    for i, layer in enumerate(net.layers):
        arrays[f"layer{i}.weights"] = layer.weights.to_numpy()
        arrays[f"layer{i}.bias"] = layer.bias.to_numpy()
    with atomic_write(path, "wb") as f:
        np.savez(f, **arrays)


_ZIP = (b"PK\x03\x04", b"PK\x05\x06")  # a .npz is a zip archive (empty: end record only)


def _what(head: bytes) -> str:
    """What a file that is not a zip archive seems to be, from its first bytes."""
    if not head:
        return "it is empty"
    if head.startswith(b"\x93NUMPY"):
        return "it is a .npy file: one array, not a saved network"
    return f"it starts with {head!r}"


def _bad(path: str, why: str) -> NetworkFileError:
    return NetworkFileError(f"cannot load a clnn network from {path!r}: {why}")


def load(path: Any, runtime, dtype: Any = None):
    """The network saved in ``path``, rebuilt on ``runtime`` (in its saved dtype, or
    ``dtype``). A missing, damaged or foreign file raises :class:`NetworkFileError`."""
    from .layers import Dense
    from .network import Network

    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except FileNotFoundError:
        raise _bad(path, "no such file") from None
    except IsADirectoryError:
        raise _bad(path, "it is a folder") from None
    except OSError as e:
        raise _bad(path, f"it cannot be read ({e.strerror or e})") from None
    if not head.startswith(_ZIP):
        raise _bad(path, "it is not a .npz file (" + _what(head) + ")")
    try:
        with np.load(path, allow_pickle=False) as z:
            files = dict((k, z[k]) for k in z.files)
    except ValueError as e:
        if "pickle" in str(e):  # an object array: clnn never writes one, nor loads one
            raise _bad(path, "it holds Python objects (an object array), not numbers") from None
        raise _bad(path, f"it is a damaged .npz file ({e})") from None
    except (OSError, zipfile.BadZipFile, EOFError, KeyError) as e:
        raise _bad(path, f"it is a damaged .npz file ({type(e).__name__}: {e})") from None
    if not isinstance(files, dict) or "clnn_format" not in files:
        raise _bad(path, "it is not a clnn network file (no clnn_format entry)")
    if str(files["clnn_format"]) != FORMAT:
        raise _bad(path, f"it holds a {str(files['clnn_format'])!r}, not a {FORMAT!r}")
    try:
        version = int(files["clnn_version"])
    except (KeyError, ValueError, TypeError):
        raise _bad(path, "its format version is missing") from None
    if version > VERSION:
        raise _bad(path, f"format version {version} is newer than this clnn reads ({VERSION})")
    try:
        cfg = json.loads(str(files["config"]))
        specs = cfg["layers"]
        loss = cfg["loss"]
        saved_dtype = cfg["dtype"]
        layers = [Dense(s["in_features"], s["out_features"], s["activation"], s.get("init"))
                  for s in specs]
        if any(s.get("type", "Dense") != "Dense" for s in specs):
            raise ValueError("unknown layer type")
    except (KeyError, ValueError, TypeError, ClnnError) as e:
        raise _bad(path, f"its architecture is damaged ({e})") from None
    weights = []
    for i, layer in enumerate(layers):
        w = files.get(f"layer{i}.weights")
        b = files.get(f"layer{i}.bias")
        if w is None or b is None:
            raise _bad(path, f"the weights of layer {i} are missing")
        if w.shape != (layer.out_features, layer.in_features) or b.shape != (
                layer.out_features,):
            raise _bad(path, f"layer {i} weights have shape {w.shape} and bias {b.shape}, "
                             f"the architecture says ({layer.out_features}, "
                             f"{layer.in_features})")
        if w.dtype.kind != "f" or b.dtype.kind != "f":
            raise _bad(path, f"layer {i} weights are not floating point")
        weights.append((w, b))
    net = Network(runtime, layers, loss=loss, dtype=dtype or saved_dtype)
    for layer, (w, b) in zip(layers, weights):
        layer.weights = w
        layer.bias = b
    return net
