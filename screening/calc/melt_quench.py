"""Amorphous cells by melt-quench molecular dynamics on a machine-learned potential (ASE).

One quench (``melt_quench(cell, calc, settings, seed)``):
  1. a random dense cell (``random_cell``): formula units of the composition inserted one atom at a
     time at uniform random positions of a cubic box of the target density, each at least
     ``MIN_DISTANCE_FACTOR`` x (sum of covalent radii) from every atom already placed (periodic images
     included); seeded;
  2. a short positions-only FIRE pre-relaxation (``pre_relax_steps``, default 60, fmax 1 eV/A) that removes
     the worst contacts so the first MD steps do not explode;
  3. melt: Maxwell-Boltzmann velocities at T_melt, Langevin NVT at T_melt for ``melt_steps``;
  4. quench: Langevin NVT with the target temperature lowered linearly from T_melt to T_final in
     ``QUENCH_BLOCK``-step blocks over ``quench_steps`` (rate (T_melt - T_final) / (quench_steps x dt));
  5. relax positions and cell (FIRE + FrechetCellFilter, screening.calc.relax) to fmax.

Defaults (``MeltQuenchSettings``): dt 2 fs, friction 0.02 /fs, T_melt 3000 K for 0.4 ps (200 steps),
quench to 300 K over 0.8 ps (400 steps; 3.4e15 K/s), relaxation <= 300 steps at 0.05 eV/A. The
quench is many orders of magnitude faster than in experiment (1e0-1e3 K/s) or in careful classical MD
(1e11-1e13 K/s): the glass is trapped higher in energy, so the energy above the crystal is an upper
estimate. Every size the input controls is bounded here (atoms, steps, quenches, temperatures,
timestep, wall time).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np

from screening.calc.calculators import quiet_stdout
from screening.errors import InputError

MIN_DISTANCE_FACTOR = 0.8  # x sum of covalent radii, random insertion
PRE_RELAX_STEPS = 60
QUENCH_BLOCK = 10  # MD steps per temperature step of the quench
MAX_ATOMS = 200
MAX_STEPS = 200_000
MAX_QUENCHES = 20
MAX_ATOM_STEPS = 50_000_000  # atoms x MD/relaxation steps x quenches (~ days on a CPU): refused above
INSERT_TRIES = 2000  # random positions tried per atom before the packing restarts looser
DENSITY_RANGE = (0.3, 25.0)  # g/cm^3


@dataclass(frozen=True)
class MeltQuenchSettings:
    """What a melt-quench does; every field is part of a cache key (see ``key``)."""

    atoms: int = 24  # at least this many atoms: the number of formula units is the smallest that reaches it
    melt_temperature: float = 3000.0  # K
    final_temperature: float = 300.0  # K
    timestep: float = 2.0  # fs
    melt_steps: int = 200
    quench_steps: int = 400
    relax_steps: int = 300
    fmax: float = 0.05  # eV/A, final relaxation
    friction: float = 0.02  # 1/fs, Langevin
    quenches: int = 3
    seed: int = 0
    pre_relax_steps: int = PRE_RELAX_STEPS  # positions-only FIRE on the random cell, fmax 1 eV/A
    max_seconds: float = 6 * 3600.0  # wall-time limit of one command (all quenches)

    def __post_init__(self):
        _check_int("atoms", self.atoms, 1, MAX_ATOMS)
        _check_float("melt temperature", self.melt_temperature, 300.0, 6000.0, "K")
        _check_float("final temperature", self.final_temperature, 1.0, 1000.0, "K")
        if self.final_temperature >= self.melt_temperature:
            raise InputError(f"the final temperature ({self.final_temperature:g} K) must be below the melt "
                             f"temperature ({self.melt_temperature:g} K)")
        _check_float("timestep", self.timestep, 0.1, 5.0, "fs")
        _check_int("melt steps", self.melt_steps, 0, MAX_STEPS)
        _check_int("quench steps", self.quench_steps, 1, MAX_STEPS)
        _check_int("relaxation steps", self.relax_steps, 0, MAX_STEPS)
        _check_float("fmax", self.fmax, 1e-3, 10.0, "eV/A")
        _check_float("friction", self.friction, 1e-4, 1.0, "1/fs")
        _check_int("quenches", self.quenches, 1, MAX_QUENCHES)
        _check_int("seed", self.seed, 0, 2 ** 32 - 1)
        _check_int("pre-relaxation steps", self.pre_relax_steps, 0, 10_000)
        _check_float("time limit", self.max_seconds, 1.0, 7 * 86400.0, "s")
        for name in ("melt_temperature", "final_temperature", "timestep", "fmax", "friction", "max_seconds"):
            object.__setattr__(self, name, float(getattr(self, name)))  # 3000 and 3000.0: one cache key
        for name in ("atoms", "melt_steps", "quench_steps", "relax_steps", "quenches", "seed",
                     "pre_relax_steps"):
            object.__setattr__(self, name, int(getattr(self, name)))

    @property
    def quench_rate(self) -> float:
        """K/s."""
        return (self.melt_temperature - self.final_temperature) / (self.quench_steps * self.timestep * 1e-15)

    def key(self) -> dict:
        """The settings that decide the result (the wall-time limit does not)."""
        out = asdict(self)
        out.pop("max_seconds")
        return out

    def describe(self) -> str:
        return (f"melt {self.melt_temperature:g} K for {self.melt_steps * self.timestep / 1000:g} ps, quench to "
                f"{self.final_temperature:g} K over {self.quench_steps * self.timestep / 1000:g} ps "
                f"({self.quench_rate:.1e} K/s), Langevin NVT dt {self.timestep:g} fs friction "
                f"{self.friction:g}/fs, then relax positions + cell to {self.fmax:g} eV/A (<= "
                f"{self.relax_steps} steps)")


def settings_from(mapping: dict | None, where: str) -> MeltQuenchSettings:
    """Settings from a config mapping (keys = field names); unknown keys and bad values: InputError."""
    mapping = dict(mapping or {})
    fields = set(MeltQuenchSettings.__dataclass_fields__)
    unknown = sorted(str(k) for k in mapping if k not in fields)
    if unknown:
        raise InputError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(fields))})")
    return MeltQuenchSettings(**mapping)


def _check_int(what, value, low, high) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise InputError(f"{what} must be a whole number {low}..{high}, not {_short(value)}")


def _check_float(what, value, low, high, unit) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) \
            or not math.isfinite(float(value)) or not low <= float(value) <= high:
        raise InputError(f"{what} must be a number {low:g}..{high:g} {unit}, not {_short(value)}")


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# ---------------------------------------------------------------- the cell


def formula_units(comp, target_atoms: int) -> tuple[dict, int]:
    """({element: count per formula unit}, formula units): the smallest count reaching target_atoms.

    comp: a pymatgen Composition with whole (integer) amounts after reduction.
    """
    if not comp.num_atoms > 0:
        raise InputError(f"{comp.formula or 'the composition'} has no atoms")
    integer_formula, _ = comp.get_integer_formula_and_factor(max_denominator=1000)
    from pymatgen.core import Composition

    unit = {str(el): int(round(n)) for el, n in Composition(integer_formula).items()}
    per_unit = sum(unit.values())
    if per_unit > MAX_ATOMS:
        raise InputError(f"{integer_formula} has {per_unit} atoms per formula unit, more than {MAX_ATOMS}")
    n = max(1, math.ceil(target_atoms / per_unit))
    while n > 1 and n * per_unit > MAX_ATOMS:
        n -= 1
    return unit, n


def random_cell(unit: dict, n_units: int, density: float, rng: np.random.Generator):
    """ASE Atoms: n_units formula units at random in a cubic box of `density` g/cm^3 (see module doc)."""
    from ase import Atoms
    from ase.data import atomic_masses, atomic_numbers, covalent_radii

    if not DENSITY_RANGE[0] <= density <= DENSITY_RANGE[1]:
        raise InputError(f"density {density:g} g/cm^3 is outside {DENSITY_RANGE[0]:g}..{DENSITY_RANGE[1]:g}")
    symbols = [el for el, k in unit.items() for _ in range(k * n_units)]
    numbers = np.array([atomic_numbers[s] for s in symbols])
    mass = float(atomic_masses[numbers].sum())  # g/mol
    volume = mass / 0.602214076 / density  # A^3 (1 g/cm^3 = 0.6022 amu/A^3)
    length = volume ** (1 / 3)
    radii = covalent_radii[numbers]
    # heavy, large atoms first: the small ones fill the gaps
    order = sorted(range(len(symbols)), key=lambda i: -radii[i])
    factor = MIN_DISTANCE_FACTOR
    for _attempt in range(12):
        positions = _pack(order, radii, length, factor, rng)
        if positions is not None:
            atoms = Atoms(numbers=numbers, positions=positions, cell=[length] * 3, pbc=True)
            return atoms
        factor *= 0.9
    raise InputError(f"cannot place {len(symbols)} atoms at {density:g} g/cm^3 without overlaps: the density is "
                     "too high for this composition (give a lower --density)")


def _pack(order, radii, length, factor, rng):
    placed_idx, placed_pos = [], []
    positions = np.zeros((len(radii), 3))
    for i in order:
        ok = False
        for _ in range(INSERT_TRIES):
            trial = rng.random(3) * length
            if placed_pos:
                d = np.asarray(placed_pos) - trial
                d -= length * np.round(d / length)  # minimum image, cubic box
                dist = np.sqrt((d ** 2).sum(axis=1))
                need = factor * (radii[i] + radii[placed_idx])
                if np.any(dist < need):
                    continue
            ok = True
            break
        if not ok:
            return None
        positions[i] = trial
        placed_idx.append(i)
        placed_pos.append(trial)
    return positions


def density_of(atoms) -> float:
    """g/cm^3."""
    return float(atoms.get_masses().sum() / 0.602214076 / atoms.get_volume())


# ---------------------------------------------------------------- one quench


@dataclass
class Quench:
    """One melt-quench: the relaxed glass and how it got there."""

    seed: int
    atoms: object  # relaxed, calculator detached
    energy: float  # eV per cell, relaxed
    density: float  # g/cm^3, relaxed
    initial_density: float
    melt_msd: float  # A^2: mean squared displacement over the melt (a liquid moves, > ~1 A^2)
    melt_mean_temperature: float  # K, over the second half of the melt
    relax_converged: bool
    relax_steps: int
    max_force: float
    seconds: float

    @property
    def energy_per_atom(self) -> float:
        return self.energy / len(self.atoms)

    def as_dict(self) -> dict:
        return {"seed": self.seed, "energy": self.energy, "energy_per_atom": self.energy_per_atom,
                "density": self.density, "initial_density": self.initial_density, "melt_msd": self.melt_msd,
                "melt_mean_temperature": self.melt_mean_temperature, "relax_converged": self.relax_converged,
                "relax_steps": self.relax_steps, "max_force": self.max_force, "seconds": self.seconds}


class _Clock:
    def __init__(self, limit: float):
        self.start, self.limit = time.perf_counter(), limit

    def check(self) -> None:
        if time.perf_counter() - self.start > self.limit:
            raise InputError(f"the melt-quench passed its time limit of {self.limit:.0f} s (raise it, or use "
                             "fewer atoms, steps or quenches)")


def check_work(n_atoms: int, settings: MeltQuenchSettings) -> None:
    work = n_atoms * (settings.pre_relax_steps + settings.melt_steps + settings.quench_steps + settings.relax_steps) \
        * settings.quenches
    if work > MAX_ATOM_STEPS:
        raise InputError(f"{settings.quenches} quenches of {n_atoms} atoms with these step counts are "
                         f"{work:.2g} atom-steps, more than {MAX_ATOM_STEPS:.2g}: use fewer atoms, steps or quenches")


def melt_quench(cell, calc, settings: MeltQuenchSettings, seed: int, clock: _Clock | None = None,
                label: str = "") -> Quench:
    """Melt, quench and relax a copy of `cell` with `calc` (see the module doc); seeded."""
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
    from ase.optimize import FIRE

    from screening.calc.relax import relax

    clock = clock or _Clock(settings.max_seconds)
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    atoms = cell.copy()
    atoms.calc = calc
    initial_density = density_of(atoms)
    label = label or atoms.get_chemical_formula()
    temps = []
    try:
        with quiet_stdout():
            if settings.pre_relax_steps:
                FIRE(atoms, logfile=None, maxstep=0.1).run(fmax=1.0, steps=settings.pre_relax_steps)
            clock.check()
            MaxwellBoltzmannDistribution(atoms, temperature_K=settings.melt_temperature, rng=rng)
            Stationary(atoms)
            dyn = Langevin(atoms, settings.timestep * units.fs, temperature_K=settings.melt_temperature,
                           friction=settings.friction / units.fs, rng=rng, fixcm=True)
            start_pos = atoms.get_positions().copy()
            for done in range(0, settings.melt_steps, QUENCH_BLOCK):
                dyn.run(min(QUENCH_BLOCK, settings.melt_steps - done))
                if done >= settings.melt_steps // 2:
                    temps.append(atoms.get_temperature())
                _finite(atoms, label)
                clock.check()
            # unwrapped displacements: ASE keeps MD positions unwrapped unless something wraps them
            msd = float(((atoms.get_positions() - start_pos) ** 2).sum(axis=1).mean())
            n_blocks = math.ceil(settings.quench_steps / QUENCH_BLOCK)
            for k in range(n_blocks):
                t_k = settings.melt_temperature + (settings.final_temperature - settings.melt_temperature) \
                    * (k + 1) / n_blocks
                dyn.set_temperature(temperature_K=t_k)
                dyn.run(min(QUENCH_BLOCK, settings.quench_steps - k * QUENCH_BLOCK))
                _finite(atoms, label)
                clock.check()
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"the melt-quench of {label} failed: {type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:140]}") from None
    atoms.wrap()
    atoms.calc = None
    if settings.relax_steps:
        result = relax(atoms, calc, fmax=settings.fmax, steps=settings.relax_steps, cell=True, label=label)
    else:
        result = relax(atoms, calc, relax=False, label=label)
    clock.check()
    return Quench(seed, result.atoms, result.energy, density_of(result.atoms), initial_density, msd,
                  float(np.mean(temps)) if temps else float("nan"), result.converged, result.steps,
                  result.max_force, time.perf_counter() - start)


def _finite(atoms, label: str) -> None:
    if not np.all(np.isfinite(atoms.get_positions())):
        raise InputError(f"the melt-quench of {label} blew up (non-finite positions): use a smaller timestep")
