"""OpenMP settings that keep inference fast on a machine that is doing other work too.

PyTorch's CPU kernels run on OpenMP threads (GNU libgomp in the PyPI wheels). Between
two parallel regions libgomp's threads spin, waiting for the next one, for up to
about a third of a millisecond of busy looping each time. On a quiet machine that
saves a wake-up; on a busy one a spinning thread holds a core that the thread with
the actual work is waiting for, and the model's thousands of small parallel regions
pay for it: beside six busy processes on two cores a restore took 8.9 times its quiet
time spinning, 4.5 times sleeping (``OMP_WAIT_POLICY=PASSIVE``), where its fair share
of the CPU allows 3.5. Sleeping costs about 5 % on a quiet machine
(``benchmarks/contention.py``; figures in the README's *Speed and memory*).

libgomp reads the policy once, when it is loaded with torch, so this must run before
torch is imported; a policy the user set (``OMP_WAIT_POLICY``, or libgomp's own
``GOMP_SPINCOUNT``) is always kept.
"""

from __future__ import annotations

import os
import sys

#: The environment variable and the value apollo-cli prefers.
WAIT_POLICY = ("OMP_WAIT_POLICY", "PASSIVE")


def prefer_passive_waiting() -> bool:
    """Ask OpenMP threads to sleep rather than spin while they wait, if it is not too late.

    Returns whether the setting will take effect: False when torch (and with it
    libgomp) is already loaded, or when the user chose a policy of their own.
    """
    name, value = WAIT_POLICY
    if "torch" in sys.modules or name in os.environ or "GOMP_SPINCOUNT" in os.environ:
        return False
    os.environ[name] = value
    return True
