"""Child processes that never outlive their parent."""

from __future__ import annotations

import ctypes
import signal
import sys


def die_with_parent() -> None:
    """`preexec_fn` for a child process that must not outlive us (runs between fork and
    exec): the kernel sends it SIGKILL when its parent dies, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
