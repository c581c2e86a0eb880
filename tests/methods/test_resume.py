"""Every method resumes an interrupted study: finished trials are kept, never run again, and the
budget holds across the two runs."""

from __future__ import annotations

import pytest

import cotune
from cotune.methods import METHODS
from cotune.trial import TrialState

BUDGETS = dict(total_budget=800, full_budget=100, small_budget=20, n_init=3, n_confirm=1)


class Interrupting:
    """The conftest landscape (best at wiki=0.6, rank 16, no dropout), counting calls; raises
    KeyboardInterrupt (Ctrl-C) on call ``stop_at``."""

    def __init__(self, stop_at: int | None = None):
        self.stop_at = stop_at
        self.calls: list[tuple[str, float]] = []

    def __call__(self, config, budget):
        self.calls.append((config.key(), budget))
        if self.stop_at is not None and len(self.calls) == self.stop_at:
            raise KeyboardInterrupt
        w = config.mixture
        full = 1.0 - (w["wiki"] - 0.6) ** 2 - (config.params["lora_rank"] / 64 - 0.25) ** 2 - config.params["lora_dropout"]
        # a full run reports its score at the small budget, so jobs needs no extra short runs
        return cotune.Result(score=full * min(1.0, budget / 100) ** 0.1, curve={20.0: full * 0.2**0.1})


def _record(trial: cotune.Trial) -> tuple:
    return (trial.number, trial.config, trial.budget, trial.role, trial.state, trial.score, trial.curve, trial.cost)


@pytest.mark.parametrize("k", [2, 5], ids=lambda k: f"after{k}")
@pytest.mark.parametrize("method", sorted(METHODS))
def test_interrupted_study_resumes_without_repeating_finished_trials(method, k, space, tmp_path):
    db = tmp_path / "study.db"
    first = Interrupting(stop_at=k + 1)
    with pytest.raises(KeyboardInterrupt):
        cotune.optimize(first, space, method=method, seed=0, storage=db, **BUDGETS)
    stored = cotune.Study.load(db).trials
    finished = [t for t in stored if t.state.finished]
    assert len(finished) == k and all(t.state is TrialState.COMPLETE for t in finished)
    assert [t.state for t in stored if not t.state.finished] == [TrialState.WAITING]  # the interrupted one
    assert [t.number for t in finished] == list(range(k))

    second = Interrupting()
    result = cotune.optimize(second, space, method=method, seed=0, storage=db, **BUDGETS)

    assert result.spent <= BUDGETS["total_budget"] + BUDGETS["full_budget"]
    assert all(t.state is TrialState.COMPLETE for t in result.trials)
    assert result.best is not None and result.best.budget == BUDGETS["full_budget"]
    assert [_record(t) for t in result.trials[:k]] == [_record(t) for t in finished]  # kept as they were
    done = [(t.config.key(), t.budget) for t in result.trials]
    assert len(set(done)) == len(done)  # no configuration trained twice at one budget
    assert set(first.calls[:k]).isdisjoint(second.calls)  # no finished trial ran again
    assert second.calls[0] == first.calls[k]  # the interrupted trial runs first
    assert len(second.calls) == len(result.trials) - k  # one call per trial not finished before
    assert [t.number for t in result.trials] == list(range(len(result.trials)))
