"""Space-filling and random designs over a search space (Sobol, uniform on the simplex)."""

from __future__ import annotations

import math

import numpy as np

from cotune.space.search_space import Config, SearchSpace


def cube_to_encoded(space: SearchSpace, cube: np.ndarray) -> np.ndarray:
    """Map points of the unit cube (``n x d``) to encoded configurations (``n x d``).

    The mixture coordinates go through the ``-log(u)`` normalisation, which turns uniform
    coordinates into a flat Dirichlet, i.e. a uniform cover of the simplex at any number of
    domains (no rejection sampling); parameter coordinates are used as they are.
    """
    cube = np.atleast_2d(np.asarray(cube, dtype=np.float64))
    n_mix = len(space.domains)
    out = cube.copy()
    if n_mix:
        e = -np.log(np.clip(cube[:, :n_mix], 1e-12, 1.0 - 1e-12))
        out[:, :n_mix] = e / e.sum(axis=1, keepdims=True)
    return out


def sobol_design(space: SearchSpace, n: int, seed: int) -> list[Config]:
    """The first ``n`` points of a scrambled Sobol sequence mapped into the space.

    The sequence is drawn in powers of two and cut, so a longer design extends a shorter one
    with the same seed: design point ``i`` never changes when ``n`` grows.
    """
    if n <= 0:
        return []
    from scipy.stats import qmc  # scipy.stats takes a second to import; keep `import cotune` fast

    sobol = qmc.Sobol(d=space.dim, scramble=True, seed=np.random.default_rng(seed))
    cube = sobol.random_base2(max(0, math.ceil(math.log2(n))))[:n]
    return [space.decode(row) for row in cube_to_encoded(space, cube)]


def random_configs(space: SearchSpace, n: int, rng: np.random.Generator) -> list[Config]:
    """``n`` independent uniform configurations (flat Dirichlet mixture, uniform encodings)."""
    cube = rng.random((n, space.dim))
    return [space.decode(row) for row in cube_to_encoded(space, cube)]


def random_encoded(space: SearchSpace, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n x d`` uniform encoded points, rounded to configurations as trained."""
    return space.round(cube_to_encoded(space, rng.random((n, space.dim))))


def initial_design(space: SearchSpace, n: int, seed: int) -> list[Config]:
    """The user's baseline (default configuration) followed by ``n - 1`` Sobol points.

    Every study trains the baseline first, so its answer can be compared with the current setup.
    """
    if n <= 0:
        return []
    default = space.default_config()
    return [default] + [c for c in sobol_design(space, n, seed) if c != default][: n - 1]
