"""Child processes that die with their parent, so that a SIGKILLed CLI or server leaves nothing running.

A process killed with SIGKILL runs no cleanup and tells its children nothing: each child has to notice.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

POLL_S = 0.5  # how often the watchdog looks at the parent
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def die_with(parent: int) -> None:
    """End this process when `parent` (the pid that started it) ends; call it first thing in a spawned child.

    On Linux the kernel sends SIGKILL the moment the parent dies (PR_SET_PDEATHSIG; strictly, when the
    parent's thread that started this process ends: the pools and job processes here are started by a
    thread that outlives them). Off Linux there is no such call, and a sandbox may refuse it, so a daemon
    thread also polls os.getppid() against `parent`. The pid is passed in rather than read here: a spawned
    child takes seconds to start, and its parent may be gone by then.
    """
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, ctypes.c_ulong(signal.SIGKILL))
    if os.getppid() != parent:  # gone before the signal was asked for, which then never comes
        os._exit(1)
    threading.Thread(target=_watch, args=(parent,), name="ehdnas-lifeline", daemon=True).start()


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(POLL_S)
    os._exit(1)
