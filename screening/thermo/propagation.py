"""Propagation of energy errors: first order from the optimal decompositions, or Monte Carlo draws.

First order: a result's gradient with respect to the entry energies (from the phases of its hull
points, which the solver already found) and the error model's covariance give its standard deviation;
95 % interval = value +/- 1.96 sd. Monte Carlo: `draws` correlated sets of all energies of the
chemical system (seeded, reproducible), the whole problem solved again for each, which also sees a
change of decomposition (another phase becoming stable) that first order cannot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Iterator

import numpy as np

from screening.data.table import ChemSys
from screening.errors import InputError
from screening.thermo.error_defaults import DEFAULT_DRAWS, MAX_DRAWS, METHODS
from screening.thermo.error_model import ErrorModel, standard_deviation
from screening.thermo.hull import OWN_ENERGY

Z95 = 1.959963984540054  # two-sided 95 % of a normal distribution


@dataclass(frozen=True)
class Settings:
    """How to propagate: method, error model, Monte Carlo draws and seed."""

    method: str = "first-order"
    model: ErrorModel = ErrorModel()
    draws: int = DEFAULT_DRAWS
    seed: int = 0

    def __post_init__(self):
        if self.method not in METHODS:
            raise InputError(f"unknown uncertainty method {self.method!r}: choose " + " or ".join(METHODS))
        if isinstance(self.draws, bool) or not isinstance(self.draws, int) or not 1 <= self.draws <= MAX_DRAWS:
            raise InputError(f"the number of Monte Carlo draws must be an integer from 1 to {MAX_DRAWS}, "
                             f"got {self.draws!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            raise InputError(f"the seed must be a non-negative integer below 2^63, got {self.seed!r}")

    def as_dict(self) -> dict:
        out = {"method": self.method, "error_model": self.model.as_dict(), "interval": "95 %"}
        if self.method == "monte-carlo":
            out.update(draws=self.draws, seed=self.seed)
        return out


def formula_lookup(chemsys: ChemSys, own_formula: str) -> Callable[[int], str]:
    """Gradient key -> formula of the entry (OWN_ENERGY: the compound's given energy)."""
    return lambda key: own_formula if key == OWN_ENERGY else chemsys.names[key]


def first_order(value: float | None, sd: float | None) -> dict:
    """{std, interval_95} of a value with first-order standard deviation sd."""
    if value is None or sd is None:
        return {"std": None, "interval_95": None}
    return {"std": sd, "interval_95": [value - Z95 * sd, value + Z95 * sd]}


def sample_summary(values) -> dict:
    """{std, interval_95, defined_fraction} of Monte Carlo values (None where undefined in a draw)."""
    defined = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    fraction = len(defined) / max(len(values), 1)
    if not len(defined):
        return {"std": None, "interval_95": None, "defined_fraction": fraction}
    std = float(defined.std(ddof=1)) if len(defined) > 1 else 0.0
    low, high = np.percentile(defined, [2.5, 97.5])
    return {"std": std, "interval_95": [float(low), float(high)], "defined_fraction": fraction}


def std_of(settings: Settings, chemsys: ChemSys, own_formula: str, gradient) -> float | None:
    return standard_deviation(settings.model, formula_lookup(chemsys, own_formula), gradient)


def normal_probability_below(value: float, sd: float, level: float) -> float:
    """P(X < level) for X ~ N(value, sd^2); a step function when sd is 0."""
    if sd <= 0:
        return 1.0 if value < level else 0.0
    return 0.5 * math.erfc(-(level - value) / (sd * math.sqrt(2.0)))


def perturbed_systems(chemsys: ChemSys, settings: Settings, own_formula: str | None = None,
                      own_energy: float | None = None) -> Iterator[tuple[ChemSys, float | None]]:
    """Monte Carlo draws: (the chemical system with drawn energies, the drawn own energy or None).

    own_formula/own_energy: a compound's given energy (not a row) drawn jointly with the rows, sharing
    their correction errors. With a zero error model every draw equals the input exactly.
    """
    formulas = list(chemsys.names)
    extra = own_energy is not None and own_formula is not None
    if extra:
        formulas.append(own_formula)
    rng = np.random.default_rng(settings.seed)
    deltas = settings.model.draws(formulas, settings.draws, rng)
    for k in range(settings.draws):
        energies = chemsys.energies + deltas[k, :chemsys.size]
        drawn_own = own_energy + float(deltas[k, -1]) if extra else None
        yield replace(chemsys, energies=energies), drawn_own


def frequencies(labels, threshold: float = 0.05) -> list[dict]:
    """[{outcome, fraction}] of the outcomes seen in more than `threshold` of the draws, most common first."""
    counts: dict = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    total = max(len(labels), 1)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
    return [{"outcome": outcome, "fraction": count / total} for outcome, count in ranked
            if count / total > threshold]
