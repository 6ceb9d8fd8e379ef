"""Relaxing positions and cell with an ASE optimizer and cell filter, or a single-point energy."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from screening.calc.calculators import quiet_stdout
from screening.errors import InputError

DEFAULT_FMAX = 0.05  # eV/A (and the filter's stress equivalent)
DEFAULT_STEPS = 500
OPTIMIZERS = ("FIRE", "BFGS", "LBFGS")
DEFAULT_OPTIMIZER = "FIRE"


@dataclass
class Relaxation:
    """The outcome: final atoms (with the calculator detached), energy and how it got there."""

    atoms: object
    energy: float  # eV per cell
    relaxed: bool
    converged: bool
    steps: int
    fmax: float | None  # requested force threshold (None for a single point)
    max_force: float  # eV/A on the final structure
    volume_initial: float
    volume_final: float
    optimizer: str | None
    cell_filter: str | None
    seconds: float

    @property
    def energy_per_atom(self) -> float:
        return self.energy / len(self.atoms)

    def as_dict(self) -> dict:
        return {"relaxed": self.relaxed, "converged": self.converged, "steps": self.steps,
                "fmax": self.fmax, "max_force": self.max_force, "optimizer": self.optimizer,
                "cell_filter": self.cell_filter, "volume_initial": self.volume_initial,
                "volume_final": self.volume_final, "seconds": self.seconds}


def _cell_filter(atoms):
    try:
        from ase.filters import FrechetCellFilter

        return FrechetCellFilter(atoms), "FrechetCellFilter"
    except ImportError:  # ASE < 3.23
        from ase.constraints import ExpCellFilter

        return ExpCellFilter(atoms), "ExpCellFilter"


def _optimizer(name: str):
    from ase import optimize

    if name not in OPTIMIZERS:
        raise InputError(f"unknown optimizer {name!r}: use one of {', '.join(OPTIMIZERS)}")
    return getattr(optimize, name)


def relax(atoms, calc, *, relax: bool = True, fmax: float = DEFAULT_FMAX, steps: int = DEFAULT_STEPS,
          cell: bool = True, optimizer: str = DEFAULT_OPTIMIZER, label: str = "") -> Relaxation:
    """Relax positions (and the cell, when `cell`) of a copy of `atoms` with `calc`.

    relax=False gives the single-point energy of the structure as given. A calculator failure or a
    non-finite energy is an InputError naming `label`.
    """
    start = time.perf_counter()
    work = atoms.copy()
    work.calc = calc
    volume_initial = float(work.get_volume())
    label = label or work.get_chemical_formula()
    converged, n_steps, filter_name, opt_name = True, 0, None, None
    try:
        with quiet_stdout():
            if relax:
                target, filter_name = _cell_filter(work) if cell else (work, None)
                opt_cls = _optimizer(optimizer)
                opt_name = optimizer
                opt = opt_cls(target, logfile=None)
                converged = bool(opt.run(fmax=fmax, steps=steps))
                n_steps = int(opt.nsteps)
            energy = float(work.get_potential_energy())
            forces = work.get_forces()
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"the calculator failed on {label}: {type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:140]}") from None
    if not math.isfinite(energy):
        raise InputError(f"the calculator gave a non-finite energy for {label}")
    max_force = float(np.sqrt((np.asarray(forces) ** 2).sum(axis=1)).max()) if len(work) else 0.0
    final = work.copy()  # without the calculator
    return Relaxation(final, energy, relax, converged, n_steps, fmax if relax else None, max_force,
                      volume_initial, float(final.get_volume()), opt_name, filter_name,
                      time.perf_counter() - start)
