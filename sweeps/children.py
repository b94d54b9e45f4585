"""Processes a sweep starts (workers, trainers) end with the process that started them.

``kill -9`` of ``albumgan sweep run`` must not leave a worker that goes on taking trials, or a
trainer that goes on writing a run directory the re-run will want. The parent passes its pid in
``ALBUMGAN_PARENT_PID`` (``child_env``); the child calls ``die_with_parent()`` first thing, which
asks Linux to send it SIGTERM when that parent dies (``PR_SET_PDEATHSIG``), or elsewhere starts a
thread that watches the parent. A trainer treats that SIGTERM as it treats ``wandb agent``'s:
checkpoint, status ``interrupted``, exit 143. Nothing here imports a framework.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping

from albumgan.sweeps.spec import PACKAGE_ROOT

__all__ = ["PARENT_ENV", "child_env", "die_with_parent"]

PARENT_ENV = "ALBUMGAN_PARENT_PID"
_PR_SET_PDEATHSIG = 1  # from <sys/prctl.h>


def child_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a process this one starts: tied to this pid, and able to import the
    project's packages from any working directory (a checkout that is not pip-installed)."""
    env = dict(os.environ if base is None else base)
    env[PARENT_ENV] = str(os.getpid())
    paths = [str(PACKAGE_ROOT), *(p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p)]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


def die_with_parent() -> None:
    """SIGTERM this process when the parent named in ``ALBUMGAN_PARENT_PID`` dies.

    A no-op when the variable is unset (a trainer started by hand or by ``wandb agent``). The
    variable is removed, so processes this one starts are not tied to the grandparent.
    """
    value = os.environ.pop(PARENT_ENV, "")
    if not value.isdigit():
        return
    parent = int(value)
    if not _set_pdeathsig(signal.SIGTERM):
        threading.Thread(target=_watch, args=(parent,), daemon=True, name="parent-watch").start()
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _set_pdeathsig(signum: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)
