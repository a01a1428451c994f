"""Find, render, build and cache the Mako OpenCL kernels in ``kernels/``.

Templates are rendered with ``strict_undefined=True``: a missing parameter is an error that
lists the parameters given. Built programs are cached per runtime (in memory) and on disk (by
PoCL's kernel cache, NVIDIA's compute cache, or pyopencl's binary cache for other drivers; all
keyed by source, options and device), so a new process does not compile again. clnn checks its
on-disk caches against a manifest of checksums before a driver reads them
(:mod:`clnn.cacheguard`), and a program that comes back from a cache without its kernels is
rebuilt from a source the cache has never seen.

Example:
    >>> from clnn.program import render
    >>> src = render("gemv.cl.mako", dtype="float", layout="row", WGS=1, RPT=2, VW=4,
    ...              ALIGNED=False, XINC1=True, SPLIT=False, ACC=0, CU=1, NARROW=0, LDK=False)
    >>> "gemv_row" in src
    True
"""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path
from typing import Any

import pyopencl as cl
from mako.lookup import TemplateLookup

from . import cacheguard
from .errors import BuildError, RenderError

__all__ = ["kernel_dir", "render", "ProgramCache", "BUILD_OPTIONS"]

# -cl-mad-enable: lets a*b + c become one fused instruction (the fma() builtin is ~5x slower
# on PoCL); no fast-relaxed-math, so NaN and Inf propagate as numpy's do.
BUILD_OPTIONS = ("-cl-mad-enable",)

cacheguard.setup()  # before the first context: PoCL reads POCL_CACHE_DIR then


def kernel_dir() -> Path:
    """The folder holding the ``*.cl.mako`` templates (inside the installed package, or the
    top-level ``kernels/`` of a source checkout)."""
    here = Path(__file__).resolve().parent
    for cand in (here / "kernels", here.parent / "kernels"):
        if (cand / "common.cl.mako").is_file():
            return cand
    try:  # installed with a package-dir mapping (editable installs)
        import importlib.resources as ir

        cand = Path(str(ir.files("clnn.kernels")))
        if (cand / "common.cl.mako").is_file():
            return cand
    except (ImportError, ModuleNotFoundError, TypeError):
        pass
    raise FileNotFoundError("clnn's kernel templates (kernels/*.cl.mako) are missing")


_lookup_lock = threading.Lock()
_lookup: TemplateLookup | None = None


def _get_lookup() -> TemplateLookup:
    global _lookup
    with _lookup_lock:
        if _lookup is None:
            _lookup = TemplateLookup(
                directories=[str(kernel_dir())],
                strict_undefined=True,
                input_encoding="utf-8",
            )
        return _lookup


def render(template: str, **params: Any) -> str:
    """Render one kernel template with ``params``; errors name the template and parameters."""
    try:
        tpl = _get_lookup().get_template(template)
        return tpl.render(**params)
    except Exception as e:  # mako raises NameError, TopLevelLookupException, ...
        shown = ", ".join(f"{k}={v!r}" for k, v in sorted(params.items()))
        raise RenderError(
            f"cannot render {template} with {shown}: {type(e).__name__}: {e}"
        ) from e


class ProgramCache:
    """Built programs of one context, keyed by template and every render parameter."""

    def __init__(self, ctx: cl.Context, device: cl.Device, options: tuple = BUILD_OPTIONS):
        self._ctx = ctx
        self._device = device
        self._options = list(options)
        self._programs: dict = {}
        self._lock = threading.Lock()

    def program(self, template: str, **params: Any) -> cl.Program:
        key = (template, tuple(sorted(params.items())))
        prg = self._programs.get(key)
        if prg is not None:
            return prg
        with self._lock:
            prg = self._programs.get(key)
            if prg is None:
                src = render(template, **params)
                prg = build(self._ctx, self._device, src, self._options, template, params)
                self._programs[key] = prg
        return prg

    def kernel(self, template: str, entry: str, **params: Any) -> cl.Kernel:
        """A new kernel object (its own argument slots) for ``entry`` in the program.

        A program that built but lacks ``entry`` (a damaged driver cache returns such
        programs) is built once more from a source no cache has seen."""
        try:
            return cl.Kernel(self.program(template, **params), entry)
        except cl.Error as e:
            first = e
        key = (template, tuple(sorted(params.items())))
        with self._lock:
            src = render(template, **params) + f"\n// clnn rebuild {os.getpid()} {id(self)}\n"
            prg = build(self._ctx, self._device, src, self._options, template, params)
            try:
                kernel = cl.Kernel(prg, entry)
            except cl.Error as e:
                raise BuildError(f"{template}: no kernel {entry!r} after building it twice "
                                 f"({first}; then {e})") from None
            self._programs[key] = prg
        return kernel

    @property
    def built(self) -> int:
        """How many programs this cache holds."""
        return len(self._programs)

    def clear(self) -> None:
        with self._lock:
            self._programs.clear()


def build(
    ctx: cl.Context,
    device: cl.Device,
    src: str,
    options: list,
    template: str = "<source>",
    params: dict | None = None,
) -> cl.Program:
    """Build ``src`` for ``device``; a failure raises :class:`BuildError` with the log."""
    shown = ", ".join(f"{k}={v!r}" for k, v in sorted((params or {}).items()))
    cache_dir = str(cacheguard.pyopencl_dir())
    with warnings.catch_warnings():
        # pyopencl warns about non-empty build logs (PoCL prints harmless notes)
        warnings.simplefilter("ignore")
        try:
            return cl.Program(ctx, src).build(options=options, devices=[device],
                                              cache_dir=cache_dir)
        except cl.Error as e:
            if getattr(e, "code", None) not in _COMPILE_FAILURES:
                # not the compiler saying no (a damaged cached binary, a driver hiccup):
                # once more from a source no cache has seen
                salted = src + f"\n// clnn rebuild {os.getpid()}\n"
                try:
                    return cl.Program(ctx, salted).build(options=options, devices=[device],
                                                         cache_dir=cache_dir)
                except cl.Error as e2:
                    e = e2
            log = str(e)
            raise BuildError(
                f"OpenCL build of {template} ({shown}) failed on {device.name.strip()}:\n{log}"
            ) from None


_COMPILE_FAILURES = (cl.status_code.BUILD_PROGRAM_FAILURE, cl.status_code.INVALID_BUILD_OPTIONS,
                     cl.status_code.COMPILE_PROGRAM_FAILURE)


def cache_disabled() -> bool:
    """True when the on-disk binary cache is switched off (PYOPENCL_NO_CACHE)."""
    return bool(os.environ.get("PYOPENCL_NO_CACHE"))
