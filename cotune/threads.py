"""How the driver uses the CPU for its own models: one thread (torch's, BLAS's, OpenMP's).

The driver's GPs and predictor work on at most a few hundred points, where more threads save
nothing on an idle machine and, on a busy one (workers training, another study, any other
process), make every fit wait for threads that cannot all run: measured 20x slower on 2 cores
with one of them busy. One thread also makes a study's trials the same on every machine: the
order of a multi-threaded sum depends on the thread count, and studies part on such roundings.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any


@functools.cache
def _controller() -> Any:
    """The thread pools of the BLAS and OpenMP libraries loaded by now (torch, numpy and scipy
    are, once a method exists)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run the block on one thread of torch, BLAS and OpenMP, restoring the caller's settings after."""
    import torch

    before = torch.get_num_threads()
    if before != 1:
        torch.set_num_threads(1)
    try:
        with _controller().limit(limits=1):
            yield
    finally:
        if before != 1:
            torch.set_num_threads(before)
