"""A structure's energy and where it lands in the data set: the core of `screening energy`.

``compute_energy(path, table, base_table, ...)``: read, relax (or not), convert the total energy to a
formation energy with the calculator's calibrated references, then place it against `table`:
energy above hull and decomposition (`analyse_stability` with energy=E_form), and the window of the
compound at its own energy (`analyse_window(..., as_is=True, energy=E_form)`: the window a new phase of
that energy has, whatever the data hold at that composition). The calibration is made against
`base_table` (the data file without user entries), so adding user entries does not recalibrate.

``entry_dict(...)`` is the saved entry: a pymatgen PDEntry whose energy is the formation energy of the
cell (eV), which the data layer (load_entries JSON, --user-entries) reads as a formation energy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from pymatgen.core import Composition

from screening.calc.calibration import (Calibration, get_calibration, load_calibration_set,
                                        not_covered_message)
from screening.calc.calculators import DEFAULT_CALCULATOR, load_calculator
from screening.calc.relax import DEFAULT_FMAX, DEFAULT_OPTIMIZER, DEFAULT_STEPS, Relaxation, relax
from screening.calc.structures import composition_of, read_structure
from screening.errors import InputError


@dataclass
class EnergyResult:
    path: str
    composition: Composition  # of the cell
    relaxation: Relaxation
    calculator: dict
    calibration: Calibration
    calibration_cached: bool
    calibration_path: str
    formation_energy: float  # eV/atom, data set's frame
    data_energy: float | None  # the data's lowest entry at this composition, if any
    stability: object
    window: object | None
    window_error: str | None
    timings: dict
    family: str = ""  # chemistry family (calibration_families.family)
    error: float = float("nan")  # eV/atom: the held-out error of that family (or the overall one)
    error_basis: str = ""  # how `error` was obtained
    regime_warning: str | None = None  # GGA / GGA+U frames mixed beyond what the references cover

    @property
    def formula(self) -> str:
        return self.composition.reduced_formula


def compute_energy(path, table, base_table, *, calculator: str | None = None,
                   calculator_config: dict | None = None, do_relax: bool = True,
                   fmax: float = DEFAULT_FMAX, steps: int = DEFAULT_STEPS, optimizer: str = DEFAULT_OPTIMIZER,
                   cell: bool = True, calibration_set=None, recalibrate: bool = False,
                   progress=None) -> EnergyResult:
    from screening.thermo.analysis import analyse_stability, analyse_window

    timings = {}
    t0 = time.perf_counter()
    atoms = read_structure(path)
    comp = composition_of(atoms)
    cset = calibration_set if calibration_set is not None else load_calibration_set()
    # Elements the calibration can never cover are refused before any calculator is loaded.
    possible = {el for el in cset.elements() if base_table.has_element(el)}
    missing = [str(el) for el in comp.elements if str(el) not in possible]
    if missing:
        raise InputError(not_covered_message(calculator or DEFAULT_CALCULATOR, comp, missing, possible))
    missing = table.missing_elements(comp)
    if missing:
        raise InputError(f"the data has no entry for element {missing[0]} (in {comp.reduced_formula})")
    calc, info = load_calculator(calculator, calculator_config)
    timings["load"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    cal, cached, cal_path = get_calibration(calc, info, base_table, cset, recalibrate=recalibrate,
                                            progress=progress)
    timings["calibration"] = time.perf_counter() - t1
    uncovered = cal.uncovered(comp)
    if uncovered:
        raise InputError(cal.not_covered_message(comp, uncovered))
    t2 = time.perf_counter()
    relaxation = relax(atoms, calc, relax=do_relax, fmax=fmax, steps=steps, cell=cell, optimizer=optimizer,
                       label=str(path))
    timings["relaxation"] = time.perf_counter() - t2
    e_form = cal.formation_energy(comp, relaxation.energy)
    t3 = time.perf_counter()
    stab = analyse_stability(table, comp, energy=e_form)
    window, window_error = None, None
    if len(comp.elements) > 1:
        try:
            window, _ = analyse_window(table, comp, as_is=True, energy=e_form)
        except InputError as exc:
            window_error = str(exc)
    row = table.row_of(comp.reduced_formula)
    data_energy = float(table.energies[row]) if row is not None else None
    timings["placement"] = time.perf_counter() - t3
    timings["total"] = time.perf_counter() - t0
    fam, error, basis = cal.family_error(comp)
    return EnergyResult(str(path), comp, relaxation, info.as_dict(), cal, cached, str(cal_path), e_form,
                        data_energy, stab, window, window_error, timings, family=fam, error=error,
                        error_basis=basis, regime_warning=cal.regime_warning(comp))


def entry_dict(result: EnergyResult) -> dict:
    """The pymatgen PDEntry (monty dict) of the result: formation energy per cell, eV."""
    from pymatgen.analysis.phase_diagram import PDEntry

    comp = result.composition
    cal = result.calibration
    name = (f"{result.formula} ({result.calculator['name']}, calibration error "
            f"{1000 * result.error:.0f} meV/atom)")
    attribute = {"source": "screening energy", "structure": result.path,
                 "calculator": result.calculator, "formation_energy_per_atom": result.formation_energy,
                 "calibration_error_per_atom": result.error, "family": result.family,
                 "calibration_warning": result.regime_warning,
                 "calibration": {k: v for k, v in cal.summary().items()
                                 if k in ("fit_mae", "holdout_mae", "holdout_rmse", "holdout_max",
                                          "n_fit", "n_holdout", "data", "calibration_set")},
                 "total_energy": result.relaxation.energy, "relaxation": result.relaxation.as_dict(),
                 "energy_type": "formation"}
    entry = PDEntry(comp, result.formation_energy * comp.num_atoms, name=name, attribute=attribute)
    return entry.as_dict()
