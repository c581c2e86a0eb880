"""Coordinate-wise BO: the mixture with the model fixed, then the model with the mixture fixed, repeated."""

from __future__ import annotations

from cotune.methods.base import History, TrialRequest
from cotune.methods.bo import BOMethod
from cotune.space.blocks import Block
from cotune.space.search_space import Config

#: Data and model phases each take this share of the BO iterations (two full rounds).
PHASES = 4


class AlternatingMethod(BOMethod):
    """Full-run BO that alternates between blocks, the other block held at the incumbent's values.

    After the joint Sobol design (baseline first), the remaining full runs are split into
    ``PHASES`` equal phases: data, model, data, model. Every proposal fits one GP to all measured
    full runs over the joint space and maximises the acquisition over the active block only,
    the way a practitioner tunes the mixture for the current model and then the model for the
    current mixture. A space with one block only is searched in that block.
    """

    name = "alternating"

    def ask_batch(self, history: History, k: int) -> list[TrialRequest]:
        """One full run at a time: the block searched may change with every full run made."""
        return super().ask_batch(history, 1)

    def search_block(self, history: History) -> tuple[Block | None, Config | None]:
        s = self.settings
        n_design = len(self.design())
        n_full = sum(1 for t in history.trials if t.budget == s.full_budget)
        affordable = int(s.total_budget // s.full_budget)
        phase_length = max(1, (affordable - n_design) // PHASES)
        if not self.space.domains or not self.space.params:
            block: Block = "data" if self.space.domains else "model"
        else:
            block = "data" if ((n_full - n_design) // phase_length) % 2 == 0 else "model"
        done = [t for t in history.complete(s.full_budget) if t.score is not None]
        incumbent = max(done, key=lambda t: t.score).config
        return block, incumbent
