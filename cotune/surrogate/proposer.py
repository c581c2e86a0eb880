"""One BO step shared by every GP method: fit the GP, condition on pending trials, maximise the acquisition."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from cotune.space.blocks import Block, block_dims, block_space, join, other
from cotune.space.search_space import Config, SearchSpace
from cotune.surrogate.acquisition import (
    AcquisitionOptions,
    fix_features,
    make_acquisition,
    optimize_acquisition,
    with_pending,
)
from cotune.surrogate.gp import FittedGP, GPFitter

logger = logging.getLogger(__name__)


class Proposer:
    """Proposes configurations from observations, its GP's hyperparameters refitted as the
    observations grow (`cotune.surrogate.gp.GPFitter`)."""

    def __init__(self, space: SearchSpace, *, kernel: str = "matern", options: AcquisitionOptions | None = None):
        self.space = space
        self.kernel = kernel
        self.options = options or AcquisitionOptions()
        self._fitter = GPFitter(kernel=kernel)
        self.last_gp: FittedGP | None = None

    def fit(self, X: np.ndarray, y: np.ndarray, yvar: np.ndarray) -> FittedGP:
        """Fit the GP to ``n x d`` encoded points, ``n`` scores and ``n`` noise variances."""
        gp = self._fitter.fit(X, y, yvar)
        self.last_gp = gp
        return gp

    def propose_batch(
        self,
        X: np.ndarray,
        y: np.ndarray,
        yvar: np.ndarray,
        *,
        X_pending: np.ndarray,
        exclude: set[str],
        seeds: list[int],
        block: Block | None = None,
        base: Config | None = None,
    ) -> list[Config]:
        """``len(seeds)`` distinct configurations from one fit, each maximising the acquisition with
        the pending points and the ones proposed before it conditioned on at their posterior mean
        (kriging believer): what one proposal per free worker would give, minus the refits.

        Args:
            X: ``n x d`` encoded configurations as trained.
            y: ``n`` scores; yvar: ``n`` noise variances (0 for measured scores).
            X_pending: ``p x d`` configurations being trained now.
            exclude: keys of configurations that must not be proposed.
            seeds: one seed per proposal, of the acquisition optimiser's random starts.
            block: search only this block ("data" or "model") of the joint space, the GP still
                modelling both; the other block keeps its values in ``base``.
        """
        gp = self.fit(X, y, yvar)
        if block is not None and base is None:
            raise ValueError("a block proposal needs the base configuration that supplies the other block")
        pending, excluded, out = np.asarray(X_pending).reshape(-1, self.space.dim), set(exclude), []
        for seed in seeds:
            acqf = make_acquisition(with_pending(gp, X, y, yvar, pending), self.options.kind, X)
            config = self._maximise(acqf, seed, excluded, block, base)
            out.append(config)
            excluded.add(config.key())
            pending = np.vstack([pending, self.space.encode(config)])
        return out

    def _maximise(self, acqf: Any, seed: int, exclude: set[str], block: Block | None,
                  base: Config | None) -> Config:
        """The trainable configuration maximising ``acqf`` over the space, or over ``block`` of it."""
        if block is None:
            point = optimize_acquisition(acqf, self.space, seed=seed, exclude=exclude, options=self.options)
            return self.space.decode(point)
        encoded = self.space.encode(base)
        fixed = {i: encoded[i] for i in block_dims(self.space, other(block))}
        sub = block_space(self.space, block)

        def embed(part: Config) -> Config:
            return join(part, base, block)

        point = optimize_acquisition(
            fix_features(acqf, self.space.dim, fixed), sub, seed=seed, exclude=exclude, options=self.options,
            embed=embed,
        )
        return embed(sub.decode(point))
