"""How the driver uses the CPU for its own models: one torch thread.

The driver's GPs and predictor work on at most a few hundred points, where torch's intra-op
threads save nothing on an idle machine and, on a busy one (workers training, another study, any
other process), make every fit wait for threads that cannot all run: measured 20x slower on
2 cores with one of them busy. One thread also makes a study's trials the same whatever the
machine's core count.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run the block with torch's intra-op threads set to one, restoring the caller's setting after."""
    import torch

    before = torch.get_num_threads()
    if before != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if before != 1:
            torch.set_num_threads(before)
