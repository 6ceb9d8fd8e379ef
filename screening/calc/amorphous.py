"""Energy of an amorphous phase above the crystalline hull, from melt-quenches on a calculator.

``compute_amorphous(comp, table, base_table, ...)`` runs ``settings.quenches`` independent melt-quenches
(screening.calc.melt_quench, seeds seed, seed+1, ...) of a random cell of the composition and places each
relaxed glass against the data's hull:

* with a crystal of the composition (a compound or example of the calibration set, or a given
  structure): the same calculator relaxes the crystal, and
      E_above_hull(glass) = (E_glass - E_crystal) / N  +  E_above_hull(crystal, data),
  where the crystal is taken as the data's lowest entry at the composition (0 for a ground state).
  The calculator's systematic errors largely cancel in the difference; no calibration is needed.
* without one: the glass's total energy becomes a formation energy through the calculator's
  calibrated elemental references (screening.calc.calibration) and is compared with the data's hull
  at the composition; the calibration's error for the composition (its family's or a +U element's,
  screening.calc.calibration_families) applies.

The starting density is the relaxed crystal's, else ``density`` (g/cm^3), else an estimate from ionic
radii (``estimate_density``); the final relaxation lets the cell find its own.

``amorphous_penalties(...)``: the same for the compositions of ALD grids, cached per composition,
calculator, MD settings, data file and calibration set under <cache_dir>/amorphous/ (key stored in the
file and compared on reading; atomic writes).
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from dataclasses import dataclass, field

import numpy as np
from pymatgen.core import Composition

from screening.calc.melt_quench import (DENSITY_RANGE, MeltQuenchSettings, _Clock, check_work, density_of,
                                        formula_units, melt_quench, random_cell)
from screening.errors import InputError
# the cell filter's 9x9 matrix exponentials are ~100x slower with BLAS threads spinning against torch
from screening.thermo.blas_threads import one_blas_thread

CACHE_FORMAT = 1
PACKING_FRACTION = 0.58  # ionic spheres / volume: median over 14 crystals (Li2O, LiF, SiO2, Li3PO4, ...), +/-15 %


@dataclass
class AmorphousResult:
    formula: str
    cell_formula: str
    n_atoms: int
    n_units: int
    settings: dict
    calculator: dict
    reference: dict  # method, crystal or calibration details
    hull_energy: float  # data's hull at the composition, eV/atom
    quenches: list[dict]
    e_above_hull: list[float]  # per quench, eV/atom
    start_density: float
    density_source: str
    timings: dict = field(default_factory=dict)

    def stats(self) -> dict:
        v = np.array(self.e_above_hull)
        dens = np.array([q["density"] for q in self.quenches])
        return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
                "min": float(v.min()), "max": float(v.max()), "n": int(len(v)),
                "density_mean": float(dens.mean()),
                "density_std": float(dens.std(ddof=1)) if len(dens) > 1 else 0.0}

    @property
    def mean(self) -> float:
        return self.stats()["mean"]

    @property
    def formation_energy(self) -> float:
        """Mean formation energy of the glass in the data's frame, eV/atom."""
        return self.hull_energy + self.mean

    def as_dict(self) -> dict:
        return {"formula": self.formula, "cell_formula": self.cell_formula, "n_atoms": self.n_atoms,
                "formula_units": self.n_units, "e_above_hull": self.stats(),
                "e_above_hull_per_quench": list(self.e_above_hull), "formation_energy": self.formation_energy,
                "hull_energy": self.hull_energy, "start_density": self.start_density,
                "density_source": self.density_source, "reference": self.reference,
                "settings": self.settings, "calculator": self.calculator, "quenches": self.quenches,
                "timings": self.timings}


# ---------------------------------------------------------------- references


def crystal_specs(comp: Composition, cset) -> list[dict]:
    """Build specs of the composition's crystal in the calibration set (compounds, then examples)."""
    want = comp.reduced_formula
    for item in list(cset.compounds) + list(cset.examples):
        try:
            if Composition(str(item["formula"])).reduced_formula == want:
                return list(item["builds"])
        except Exception:
            continue
    return []


def estimate_density(comp: Composition) -> float:
    """g/cm^3 from ionic radii (Shannon averages; atomic radii for elements without ions) at
    PACKING_FRACTION: a starting point, the final relaxation finds the calculator's own density."""
    volume, mass = 0.0, 0.0
    anion = max(comp.elements, key=lambda el: el.X if el.X == el.X else 0.0) if len(comp.elements) > 1 else None
    for el, amount in comp.items():
        volume += amount * 4.0 / 3.0 * math.pi * _radius(el, el == anion) ** 3
        mass += amount * float(el.atomic_mass)
    density = mass / 0.602214076 / (volume / PACKING_FRACTION)
    return float(min(max(density, DENSITY_RANGE[0] * 2), DENSITY_RANGE[1] / 2))


def _radius(el, anion: bool) -> float:
    """Shannon radius (A) of the element's common anion (most electronegative element) or the mean over its
    common cation states; the atomic radius where pymatgen has no ionic one."""
    try:
        radii = {int(k): float(v) for k, v in (el.ionic_radii or {}).items()}
        states = [s for s in el.common_oxidation_states if s in radii]
        wanted = [radii[s] for s in states if (s < 0) == anion]
        if wanted:
            return float(np.mean(wanted))
    except Exception:
        pass
    return float(el.atomic_radius or 1.5)


def check_elements(comp: Composition, table, base_table, cset, need_calibration: bool, calculator: str) -> None:
    """Refuse, before any calculator loads, elements the data lacks or the calibration cannot cover."""
    from screening.calc.calibration import not_covered_message

    missing = table.missing_elements(comp)
    if missing:
        raise InputError(f"the data has no entry for element {missing[0]} (in {comp.reduced_formula})")
    if need_calibration:
        possible = {el for el in cset.elements() if base_table.has_element(el)}
        absent = [str(el) for el in comp.elements if str(el) not in possible]
        if absent:
            raise InputError(not_covered_message(calculator, comp, absent, possible) +
                             " (or give the composition's crystal: --crystal FILE)")


def _relax_crystals(candidates, calc, label):
    """The lowest relaxed energy per atom over the starting structures; (Relaxation, index)."""
    from screening.calc.relax import relax

    best = None
    for k, atoms in enumerate(candidates):
        result = relax(atoms, calc, label=f"{label} crystal")
        if best is None or result.energy_per_atom < best[0].energy_per_atom:
            best = (result, k)
    return best


def compute_amorphous(comp: Composition, table, base_table, calc, info, settings: MeltQuenchSettings, *,
                      cset, crystal_atoms=None, crystal_source: str | None = None, density: float | None = None,
                      recalibrate: bool = False, progress=None, announce=None) -> AmorphousResult:
    """Melt-quench `settings.quenches` cells and place them (see the module doc).

    crystal_atoms: ASE Atoms of the composition's crystal (else the calibration set's build, if any).
    announce: called with one line of progress text per quench, or None.
    """
    with one_blas_thread():
        return _compute(comp, table, base_table, calc, info, settings, cset=cset, crystal_atoms=crystal_atoms,
                        crystal_source=crystal_source, density=density, recalibrate=recalibrate,
                        progress=progress, announce=announce)


def _compute(comp, table, base_table, calc, info, settings, *, cset, crystal_atoms, crystal_source, density,
             recalibrate, progress, announce) -> AmorphousResult:
    from screening.thermo.analysis import analyse_stability

    timings = {}
    t0 = time.perf_counter()
    clock = _Clock(settings.max_seconds)
    comp = Composition(comp)
    unit, n_units = formula_units(comp, settings.atoms)
    cell_comp = Composition({el: k * n_units for el, k in unit.items()})
    n_atoms = int(cell_comp.num_atoms)
    check_work(n_atoms, settings)
    crystals, source = [], None
    if crystal_atoms is not None:
        if Composition(crystal_atoms.get_chemical_formula()).reduced_formula != comp.reduced_formula:
            raise InputError(f"the crystal {crystal_source} is {crystal_atoms.get_chemical_formula(mode='reduce')}, "
                             f"not {comp.reduced_formula}")
        crystals, source = [crystal_atoms], crystal_source or "given structure"
    else:
        specs = crystal_specs(comp, cset)
        if specs:
            from screening.calc.structures import build

            crystals = [build(spec) for spec in specs]
            source = f"calibration set {cset.path} ({len(specs)} build{'s' if len(specs) > 1 else ''})"
    stab = analyse_stability(table, comp)
    reference: dict = {}
    cal = None
    if crystals:
        t1 = time.perf_counter()
        crystal, which = _relax_crystals(crystals, calc, comp.reduced_formula)
        timings["crystal"] = time.perf_counter() - t1
        reference = {"method": "crystal", "crystal": source, "crystal_build": which,
                     "crystal_energy_per_atom": crystal.energy_per_atom, "crystal_density": density_of(crystal.atoms),
                     "crystal_atoms": len(crystal.atoms), "crystal_converged": crystal.converged}
        if stab.in_data:
            reference["crystal_e_above_hull"] = float(stab.e_above_hull)
            reference["crystal_e_above_hull_from"] = ("the data's lowest entry at the composition (the crystal is "
                                                      "taken to be that polymorph)")
        else:
            cal = _calibration(calc, info, base_table, cset, recalibrate, progress, comp)
            e_form = cal.formation_energy(Composition(crystal.atoms.get_chemical_formula()), crystal.energy)
            reference["crystal_e_above_hull"] = float(e_form - stab.hull_energy)
            _, error, basis = cal.family_error(comp)
            reference["crystal_e_above_hull_from"] = ("the calibration (the composition is not in the data); "
                                                      f"error {error:.3f} eV/atom")
            reference["calibration_error"] = error
            reference["calibration_error_basis"] = basis
    else:
        cal = _calibration(calc, info, base_table, cset, recalibrate, progress, comp)
        _, error, basis = cal.family_error(comp)
        reference = {"method": "calibration", "calibration_error": error, "calibration_error_basis": basis,
                     "calibration_holdout_mae": cal.stats()["holdout_mae"],
                     "note": "no crystal of the composition: formation energy through the calibrated references"}
        warning = cal.regime_warning(comp) if hasattr(cal, "regime_warning") else None
        if warning:
            reference["regime_warning"] = warning
    if density is not None:
        start_density, density_source = float(density), "given (--density)"
    elif crystals:
        start_density, density_source = reference["crystal_density"], "relaxed crystal"
    else:
        start_density, density_source = estimate_density(comp), \
            f"estimated from ionic radii (packing fraction {PACKING_FRACTION})"
    timings["setup"] = time.perf_counter() - t0
    quenches, values = [], []
    t2 = time.perf_counter()
    for k in range(settings.quenches):
        seed = settings.seed + k
        rng = np.random.default_rng([seed, 7919])
        cell = random_cell(unit, n_units, start_density, rng)
        q = melt_quench(cell, calc, settings, seed, clock=clock, label=comp.reduced_formula)
        if reference["method"] == "crystal":
            value = q.energy_per_atom - reference["crystal_energy_per_atom"] + reference["crystal_e_above_hull"]
        else:
            value = cal.formation_energy(cell_comp, q.energy) - stab.hull_energy
        record = q.as_dict()
        record["e_above_hull"] = float(value)
        quenches.append(record)
        values.append(float(value))
        if announce is not None:
            announce(f"quench {k + 1}/{settings.quenches} (seed {seed}): {1000 * value:.0f} meV/atom above the hull, "
                     f"{q.density:.2f} g/cm^3, {q.seconds:.0f} s")
    timings["quenches"] = time.perf_counter() - t2
    timings["total"] = time.perf_counter() - t0
    return AmorphousResult(comp.reduced_formula, cell_comp.formula.replace(" ", ""), n_atoms, n_units,
                           {**settings.key(), "quench_rate_K_per_s": settings.quench_rate,
                            "max_seconds": settings.max_seconds},
                           info.as_dict(), reference, float(stab.hull_energy), quenches, values,
                           float(start_density), density_source, timings)


def _calibration(calc, info, base_table, cset, recalibrate, progress, comp):
    from screening.calc.calibration import get_calibration

    cal, _, _ = get_calibration(calc, info, base_table, cset, recalibrate=recalibrate, progress=progress)
    uncovered = cal.uncovered(comp)
    if uncovered:
        raise InputError(cal.not_covered_message(comp, uncovered) + " (or give the composition's crystal)")
    return cal


def entry_dict(result: AmorphousResult) -> dict:
    """A pymatgen PDEntry (monty dict) of the glass: mean formation energy per reduced formula, eV."""
    from pymatgen.analysis.phase_diagram import PDEntry

    comp = Composition(result.formula)
    s = result.stats()
    name = f"{result.formula} (amorphous, {result.calculator['name']} melt-quench)"
    attribute = {"source": "screening amorphous", "energy_type": "formation", "phase": "amorphous",
                 "formation_energy_per_atom": result.formation_energy, "e_above_hull": s,
                 "reference": result.reference, "settings": result.settings, "calculator": result.calculator,
                 "density": s["density_mean"]}
    return PDEntry(comp, result.formation_energy * comp.num_atoms, name=name, attribute=attribute).as_dict()


# ---------------------------------------------------------------- grids: cached per composition


def _data_sha(table) -> str:
    extra = table.source.extra or {}
    return str(extra.get("base_sha256") or table.source.sha256)


def cache_key(formula: str, info, settings: MeltQuenchSettings, table, cset) -> dict:
    return {"format": CACHE_FORMAT, "formula": Composition(formula).reduced_formula, "calculator": info.key,
            "calculator_name": info.name, "settings": settings.key(), "data": _data_sha(table),
            "calibration_set": cset.sha256}


def cache_file(key: dict):
    from screening.data.snapshot import cache_dir

    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    return cache_dir() / "amorphous" / f"{key['formula']}-{digest}.json"


def read_cache(key: dict) -> dict | None:
    """The stored summary for exactly this key, else None (a file whose key or values do not check is
    recomputed, never trusted)."""
    from screening.safe_io import LIMITS, loads_json, read_bytes

    path = cache_file(key)
    try:
        raw = loads_json(read_bytes(path, "amorphous cache", limit=LIMITS.max_config_bytes), str(path))
        if not isinstance(raw, dict) or raw.get("key") != json.loads(json.dumps(key)):
            return None
        summary = raw["summary"]
        if raw.get("sha256") != _digest(summary):
            return None
        values = [summary["e_above_hull"][k] for k in ("mean", "std", "min", "max")]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
            return None
        if not summary["e_above_hull"]["min"] <= summary["e_above_hull"]["mean"] <= summary["e_above_hull"]["max"]:
            return None
        return summary
    except Exception:
        return None


def _digest(summary) -> str:
    return hashlib.sha256(json.dumps(summary, sort_keys=True, allow_nan=False).encode()).hexdigest()


def write_cache(key: dict, summary: dict) -> None:
    from screening.data.snapshot import atomic_write_bytes

    try:
        payload = {"key": key, "summary": summary, "sha256": _digest(summary)}
        atomic_write_bytes(cache_file(key), json.dumps(payload, indent=1, allow_nan=False).encode())
    except (OSError, ValueError):
        pass  # an unwritable cache only costs time


def amorphous_penalties(formulas: list[str], table, spec: dict, where: str = "grid") -> dict[str, dict]:
    """{reduced formula: summary} for ALD grid points: the amorphous energy above the hull (eV/atom) of
    each composition, cached (see the module doc). spec: the grid's `amorphous` settings (validated by
    the screen config): MeltQuenchSettings fields plus calculator, calculator_config, device,
    calibration_set."""
    from screening.calc.calculators import load_calculator
    from screening.calc.calibration import load_calibration_set
    from screening.calc.melt_quench import settings_from

    spec = dict(spec or {})
    calculator = spec.pop("calculator", None)
    config = dict(spec.pop("calculator_config", None) or {})
    device = spec.pop("device", None)
    cset = load_calibration_set(spec.pop("calibration_set", None))
    settings = settings_from(spec, where)
    comps = {Composition(f).reduced_formula: Composition(f) for f in formulas}
    need = [c for f, c in comps.items() if not crystal_specs(c, cset)]
    for comp in comps.values():
        check_elements(comp, table, table, cset, comp in need, calculator or "sevennet")
    calc, info = load_calculator(calculator, config, device=device)
    out = {}
    for formula, comp in sorted(comps.items()):
        key = cache_key(formula, info, settings, table, cset)
        summary = read_cache(key)
        cached = summary is not None
        if summary is None:
            print(f"screening: amorphous {formula}: {settings.quenches} melt-quench(es) with {info.name} "
                  f"(cached afterwards in {cache_file(key).parent})", file=sys.stderr, flush=True)
            result = compute_amorphous(comp, table, table, calc, info, settings, cset=cset)
            summary = {"formula": formula, "e_above_hull": result.stats(), "reference": result.reference,
                       "n_atoms": result.n_atoms, "seconds": result.timings["total"]}
            write_cache(key, summary)
        out[formula] = {**summary, "cached": cached, "cache_file": str(cache_file(key)),
                        "calculator": info.as_dict(), "settings": settings.key()}
    return out
