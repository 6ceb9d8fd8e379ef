"""Is a potential's LiCoO2 miss the potential's or the reference's? A calibration-free check.

    2 ACoO2 + CoO -> A2O + Co3O4      (A = Li, Na)

is balanced in every element, in Co (3 each side, the data's +U correction per Co cancels) and in
oxide O (5 each side, the oxide correction cancels). So its reaction energy from the potential's total
energies (relaxed from the calibration set's builds) is compared with the data's formation energies
directly, with no fitted reference. The difference, per atom of the two ACoO2 (8 atoms), says how far
the potential puts the layered Co3+ oxide from CoO, Co3O4 and A2O in the data's frame.

Run: `.venv/bin/python benchmarks/co3_oxide_check.py [sevennet|chgnet] [--model 7net-l3i5]`
(about 1 min per potential on this 2-core machine; numbers in the README's calibration section).
"""

from __future__ import annotations

import argparse
import time

from pymatgen.core import Composition

from screening.calc.calculators import load_calculator
from screening.calc.calibration import CALIBRATION_FMAX, CALIBRATION_STEPS, load_calibration_set
from screening.calc.relax import relax
from screening.calc.structures import build
from screening.data.snapshot import default_entries_path, load_entries

COMPOUNDS = ("LiCoO2", "NaCoO2", "CoO", "Co3O4", "Li2O", "Na2O")


def data_energy_per_formula_unit(table, formula: str) -> float:
    """The data's lowest formation energy at the composition, eV per formula unit."""
    comp = Composition(formula)
    return float(table.energies[table.row_of(comp.reduced_formula)]) * comp.num_atoms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("calculator", nargs="?", default="sevennet")
    parser.add_argument("--model", help="e.g. 7net-l3i5 (SevenNet) or 0.3.0 (CHGNet)")
    args = parser.parse_args()
    table = load_entries(default_entries_path())
    cset = load_calibration_set()
    calc, info = load_calculator(args.calculator, {"model": args.model} if args.model else None)
    energy = {}
    for formula in COMPOUNDS:
        start = time.perf_counter()
        atoms = build(cset.example(formula)["builds"][0])
        result = relax(atoms, calc, fmax=CALIBRATION_FMAX, steps=CALIBRATION_STEPS, label=formula)
        units = len(atoms) / Composition(formula).num_atoms
        energy[formula] = result.energy / units
        print(f"{formula:<7} {energy[formula]:10.4f} eV/f.u.  converged {result.converged}  "
              f"{time.perf_counter() - start:5.1f} s", flush=True)
    print(f"\n{info.name} ({info.version})")
    for a in ("Li", "Na"):
        left, right = (f"{a}CoO2", f"{a}CoO2", "CoO"), (f"{a}2O", "Co3O4")
        model = sum(energy[f] for f in right) - sum(energy[f] for f in left)
        data = (sum(data_energy_per_formula_unit(table, f) for f in right)
                - sum(data_energy_per_formula_unit(table, f) for f in left))
        print(f"2 {a}CoO2 + CoO -> {a}2O + Co3O4: potential {model:+.3f} eV, data {data:+.3f} eV, "
              f"difference {model - data:+.3f} eV = {1000 * (model - data) / 8:+.0f} meV per {a}CoO2 atom")


if __name__ == "__main__":
    main()
