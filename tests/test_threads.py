"""The driver fits its models on one thread and gives the objective the caller's threads."""

from __future__ import annotations

import torch
from threadpoolctl import threadpool_info, threadpool_limits

import cotune
import cotune.surrogate.gp as gp_module
from tests.conftest import quadratic


def test_the_driver_fits_on_one_thread_and_the_objective_keeps_the_callers(space, monkeypatch):
    fitted_with, trained_with = [], []
    build = gp_module.build_gp

    def recording_build(*args, **kwargs):
        fitted_with.append(torch.get_num_threads())
        fitted_with.extend(pool["num_threads"] for pool in threadpool_info())  # BLAS's and OpenMP's
        return build(*args, **kwargs)

    def objective(config, budget):
        trained_with.append(torch.get_num_threads())
        trained_with.extend(pool["num_threads"] for pool in threadpool_info())
        return quadratic(config, budget)

    monkeypatch.setattr(gp_module, "build_gp", recording_build)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with threadpool_limits(limits=2):
            cotune.optimize(objective, space, total_budget=800, full_budget=100, small_budget=10, method="bo", seed=0)
            after = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    assert fitted_with and set(fitted_with) == {1}
    assert set(trained_with) == {2} and after == 2
