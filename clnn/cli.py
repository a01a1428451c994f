"""The ``clnn`` command: ``clnn devices | demo | bench NAME | tune NAME | train NAME``.

Every command takes ``--device SPEC``. A clnn error (bad ``CLNN_DEVICE``, missing device,
unsupported dtype...) becomes one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
from typing import Optional, Sequence

from . import __version__
from .errors import ClnnError
from .tune import FAMILIES

# sub-command name -> (module holding add_arguments(parser) and run(args) -> int, one line
# for --help)
BENCHES = {
    "gemv": ("clnn.bench.gemv", "matrix-vector products beside numpy, with their targets"),
    "gemm": ("clnn.bench.gemm", "matrix-matrix products beside numpy, in GFLOP/s"),
    "blas1": ("clnn.bench.blas1", "BLAS-1, elementwise maps and reductions beside numpy"),
    "batch": ("clnn.bench.batch", "a layer on a batch: one mm against one mv per sample"),
    "train": ("clnn.bench.train", "training epochs of the digits network or any MLP beside "
                                  "numpy and PyTorch"),
    "leaks": ("clnn.bench.leaks", "memory growth while clnn's objects come and go"),
    "ops": ("clnn.bench.ops", "the Python operators (a @ b, y += x) beside clnn.mm, clnn.axpy"),
    "peak": ("clnn.bench.peak", "the device's multiply-add GFLOP/s: what no product can beat"),
}
# the tunable families are listed once, in clnn.tune.FAMILIES
TUNERS = {name: ("clnn.tune", line) for name, line in FAMILIES}
TRAINERS = {
    "digits": ("clnn.examples.digits", "a 64-256-10 network learns the 8x8 digits"),
    "regression": ("clnn.examples.regression", "a tanh network learns sin(x1) + cos(x2)"),
}
# a closed stdout (`clnn demo | head -1`) ends the command with this status, as SIGPIPE
# ends other Unix tools (128 + 13)
EXIT_PIPE = 141
_FROM_DEVICE = object()  # `clnn devices --select` without SPEC


def _fmt_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


# `clnn devices --help`: the spec grammar in short (clnn/devices.py has it in full) and the
# formats scripts read; --select's fields never hold a tab (whitespace runs become one space)
DEVICES_EPILOG = """\
SPEC: alternatives separated by ",", tried in order; each is terms joined by "+", all of
which must hold. A term is P:D or P, gpu, cpu, accelerator, fp64, any, a limit (mem, alloc,
local with sizes like 8G; cu, wg with whole numbers; >= <= > < =), or a part of a platform or
device name or vendor. Example: --select 'gpu+fp64,cpu' (a GPU with fp64, else any CPU).

--select prints one line of tab-separated fields: P:D, device name, platform name, type
(CPU, GPU, ACCELERATOR, OTHER), fp64 (yes/no), global memory in bytes. With --json it prints
one JSON object: the fields of --json's device records, and "rule".

Exit status 2, with one line on stderr, when no device is selected (a spec, CLNN_DEVICE or
PYOPENCL_CTX that matches nothing, or no OpenCL device at all); the list still prints."""


def _one_line(text: str) -> str:
    return " ".join(text.split())


def cmd_devices(args: argparse.Namespace) -> int:
    from .devices import describe_choice, devices

    if args.select is not None:
        spec, source = ((args.device, "--device") if args.select is _FROM_DEVICE
                        else (args.select, "--select"))
        d, rule = describe_choice(spec, source)
        if args.json:
            print(json.dumps(dict(d.as_dict(), rule=rule)))
        else:
            values = (d.spec, d.name, d.platform, d.type, "yes" if d.fp64 else "no",
                      str(d.global_mem))
            print("\t".join(_one_line(v) for v in values))
        return 0
    devs = devices()
    chosen, rule, error = None, None, None
    try:
        chosen, rule = describe_choice(args.device, "--device")
    except ClnnError as e:
        error = str(e).splitlines()[0]
    if args.json:
        print(json.dumps({"devices": [d.as_dict() for d in devs],
                          "selected": chosen.spec if chosen else None, "rule": rule,
                          "error": error}, indent=2))
    else:
        cols = ("", "P:D", "platform", "device", "vendor", "type", "CUs", "memory", "max WG",
                "fp64", "OpenCL")
        rows = []
        for d in devs:
            rows.append(("*" if chosen and d.spec == chosen.spec else "", d.spec, d.platform,
                         d.name, d.vendor, d.type, str(d.compute_units),
                         _fmt_bytes(d.global_mem), str(d.max_work_group_size),
                         "yes" if d.fp64 else "no", d.opencl_version))
        widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c)
                  for i, c in enumerate(cols)]
        print("  ".join(c.ljust(w) for c, w in zip(cols, widths)).rstrip())
        for r in rows:
            print("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())
        if chosen:
            print(f"* = selected ({rule})")
    if error is not None:
        sys.stdout.flush()
        print(f"clnn: error: {error}", file=sys.stderr)
        return 2
    return 0


def _fmt_vec(v) -> str:
    return "[" + " ".join(f"{float(x):.3g}" for x in v) + "]"


def cmd_demo(args: argparse.Namespace) -> int:
    from . import mv
    from .runtime import Runtime

    with Runtime(args.device) as rt:
        print(f"device: {rt.device}")
        x = rt.vector([0.3, 0.9])
        w1 = rt.matrix([[0.3, 0.6], [0.1, 2.0], [0.9, 3.7], [0.0, 1.0]])
        h1 = rt.vector(4)
        w2 = rt.matrix([[0.75, 0.15, 0.22, 0.33]])
        y = rt.vector(1)
        mv(w2, mv(w1, x, out=h1), out=y)
        print(f"h1 = {_fmt_vec(h1.to_numpy())}")
        print(f"y = {_fmt_vec(y.to_numpy())}")
    return 0


def _load(table: dict, name: str, what: str):
    try:
        return importlib.import_module(table[name][0])
    except ModuleNotFoundError as e:
        if e.name and e.name.startswith("clnn"):
            raise ClnnError(f"{what} {name!r} is not available in this version") from None
        raise ClnnError(f"{what} {name!r} needs the package {e.name!r}: "
                        f"pip install 'clnn[examples]'") from None


def _show_defaults(parser: argparse.ArgumentParser) -> None:
    """Add "(default: ...)" to the help of every option whose default is a value (not None,
    False or a list) that its text does not already name ("(default ...)", "(60)")."""
    for a in parser._actions:
        text, d = a.help or "", a.default
        if (not a.option_strings or a.help == argparse.SUPPRESS or d is None or d is False
                or d is argparse.SUPPRESS or isinstance(d, (list, tuple))
                or "default" in text or f"({d})" in text):
            continue
        a.help = f"{text} (default: %(default)s)".lstrip()


def _add_sub(sub, name: str, table: dict, help_: str, common) -> None:
    p = sub.add_parser(name, help=help_, parents=[common], description=f"clnn {name}: "
                       f"{help_}. `clnn {name} NAME --help` lists NAME's options.")
    inner = p.add_subparsers(dest="target", metavar="NAME", required=True)
    for key, (_, line) in table.items():
        # no -h here: `clnn train digits --help` goes on to the module's own parser, which
        # knows its options
        q = inner.add_parser(key, parents=[common], add_help=False, help=line)
        q.set_defaults(_table=table, _what=name)
        # options are declared lazily by the module; unknown ones are collected here
        q.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def _device_help(parser: argparse.ArgumentParser) -> str:
    """The help of the top-level ``--device``, for the commands' own parsers."""
    return next(a.help for a in parser._actions if "--device" in a.option_strings)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--device", default=argparse.SUPPRESS,
                        help="device spec: P:D, gpu, cpu, a name part, requirements and "
                             "fallbacks ('gpu+fp64,cpu'); see clnn devices --help")
    parser = argparse.ArgumentParser(prog="clnn", parents=[common],
                                     description="Deep learning from scratch on OpenCL.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    p = sub.add_parser("devices", parents=[common], help="list OpenCL devices",
                       description="List OpenCL devices and mark the one clnn would use.",
                       epilog=DEVICES_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true",
                   help="print the list (with --select: the device) as JSON")
    p.add_argument("--select", metavar="SPEC", nargs="?", const=_FROM_DEVICE,
                   help="print only the device SPEC selects, as one line (see below); "
                        "without SPEC: the device --device or the environment selects")
    sub.add_parser("demo", parents=[common], help="run the two-layer example")
    _add_sub(sub, "bench", BENCHES, "benchmarks beside numpy", common)
    _add_sub(sub, "tune", TUNERS, "tune kernels for this device", common)
    _add_sub(sub, "train", TRAINERS, "train an example network", common)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``clnn`` command on ``argv`` (default: ``sys.argv[1:]``); the exit status."""
    try:
        status = _main(argv)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return status
    except BrokenPipeError:
        # the reader went away (`clnn demo | head -1`): stop quietly; stdout goes to devnull
        # so that Python's own flush at exit does not complain again (Python's docs, "Note on
        # SIGPIPE")
        with contextlib.suppress(OSError, ValueError, AttributeError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_PIPE


def _main(argv: Optional[Sequence[str]]) -> int:
    parser = build_parser()
    # options after NAME belong to the module: argparse's REMAINDER does not take a leading
    # option ("bench leaks --quick"), so unknown options are passed on explicitly
    args, extra = parser.parse_known_args(argv)
    if extra and getattr(args, "rest", None) is None:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.rest = extra + list(args.rest)
    if not hasattr(args, "device"):
        args.device = None
    try:
        if args.command == "devices":
            return cmd_devices(args)
        if args.command == "demo":
            return cmd_demo(args)
        mod = _load(args._table, args.target, args._what)
        sub = argparse.ArgumentParser(prog=f"clnn {args.command} {args.target}",
                                      description=args._table[args.target][1])
        sub.add_argument("--device", default=args.device, help=_device_help(parser))
        mod.add_arguments(sub, args.target)
        _show_defaults(sub)
        inner = sub.parse_args(args.rest)
        return int(mod.run(inner, args.target) or 0)
    except ClnnError as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"clnn: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("clnn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
