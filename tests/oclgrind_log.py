"""Collect Oclgrind's reports while the suite runs, so that a test session fails on them.

Oclgrind writes its reports to the file named by ``OCLGRIND_LOG``, but every OpenCL context
opens (and truncates) that file anew, so a plain file loses the reports of earlier contexts and
interleaves those of live ones. When ``OCLGRIND_LOG`` is set (``tox -e oclgrind`` sets it),
``tests/conftest.py`` starts a :class:`Collector`: ``OCLGRIND_LOG`` becomes a FIFO, a small
helper process appends whatever arrives there to the file first named, and after each test a
marker goes through the same FIFO, so every report is charged to the test whose kernels made it.

Reports that fail a test: invalid (out-of-bounds) reads and writes, data races, work-group
divergence, and any other kernel report. Oclgrind's API checks (``OCLGRIND_CHECK_API=1``) also
report ``clGet*Info`` queries for parameters newer than its OpenCL 1.2, which pyopencl makes
while it looks a device over: those are not errors of clnn and are dropped.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_READER = r"""
import os, select, sys
fifo, log, parent = sys.argv[1], sys.argv[2], int(sys.argv[3])
fd = os.open(fifo, os.O_RDWR)  # read-write: no EOF when the last writer closes
with open(log, "ab", buffering=0) as out:
    while True:
        if select.select([fd], [], [], 1.0)[0]:
            out.write(os.read(fd, 1 << 16))
        elif os.getppid() != parent:  # the test session is gone
            break
"""

def simulator(device) -> bool:
    """True for a simulated device (Oclgrind): correct but thousands of times slower."""
    return device.platform.startswith("Oclgrind")


_BENIGN_API = re.compile(r"Function: clGet\w*Info\s+Error:\s+CL_INVALID_VALUE")


def split_reports(text: str) -> list:
    """Oclgrind's log as a list of reports (a header line and its tab-indented details)."""
    blocks, cur = [], []
    for line in text.replace("\0", "").splitlines():
        if line.startswith("\t") or (cur and not line.strip()):
            if cur:
                cur.append(line)
            continue
        if cur:
            blocks.append("\n".join(cur).rstrip())
        cur = [line] if line.strip() else []
    if cur:
        blocks.append("\n".join(cur).rstrip())
    return [b for b in blocks if b.strip()]


def is_benign(report: str) -> bool:
    return "OpenCL runtime error detected" in report and bool(
        _BENIGN_API.search(" ".join(report.split())))


class Collector:
    """The FIFO, its reader process and the reports found so far."""

    def __init__(self, log_path: str):
        self.log = Path(log_path).resolve()
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.log.write_bytes(b"")
        self.tmp = tempfile.mkdtemp(prefix="clnn-oclgrind-")
        self.fifo = os.path.join(self.tmp, "oclgrind.fifo")
        os.mkfifo(self.fifo, 0o600)
        self.proc = subprocess.Popen([sys.executable, "-c", _READER, self.fifo, str(self.log),
                                      str(os.getpid())])
        deadline = time.monotonic() + 30
        while True:  # non-blocking open fails (ENXIO) until the reader has the FIFO open
            try:
                self.wfd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("the Oclgrind log reader did not start") from None
                time.sleep(0.01)
        os.set_blocking(self.wfd, True)
        self.pos = 0
        self.count = 0
        self.found: list = []  # (where, report)
        os.environ["OCLGRIND_LOG"] = self.fifo  # Oclgrind reads it when a context is made

    def take(self, where: str) -> list:
        """The reports logged since the last call (charged to ``where``)."""
        self.count += 1
        mark = f"\n@@clnn-oclgrind-mark-{self.count}@@\n".encode()
        os.write(self.wfd, mark)
        deadline = time.monotonic() + 30
        while True:
            with open(self.log, "rb") as f:
                f.seek(self.pos)
                data = f.read()
            i = data.find(mark)
            if i >= 0:
                self.pos += i + len(mark)
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Oclgrind log reader stalled ({self.log})")
            time.sleep(0.002)
        reports = [r for r in split_reports(data[:i].decode("utf-8", "replace"))
                   if not is_benign(r)]
        self.found.extend((where, r) for r in reports)
        return reports

    def close(self) -> None:
        # a context made from now on logs to a plain file beside the collected log
        os.environ["OCLGRIND_LOG"] = str(self.log) + ".late"
        os.close(self.wfd)
        self.proc.terminate()
        self.proc.wait(timeout=10)
        shutil.rmtree(self.tmp, ignore_errors=True)
