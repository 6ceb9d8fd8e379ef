"""How the Li3BO3 example of the calibration set was found: a seeded random search in alpha-Li3BO3's cell.

alpha-Li3BO3 is P2_1/c (a = 3.265, b = 9.180, c = 8.316 A, beta = 101.05 deg, Z = 4; Stewner 1971), but its
atomic coordinates were not available offline. Each trial places one planar BO3 triangle (B-O 1.37 A, random
orientation) and three Li at random general positions of the asymmetric unit, expands them with the space
group (28 atoms), rejects contacts below 1.25 A, relaxes the positions (80 FIRE steps to 0.5 eV/A) and then
positions and cell (SevenNet-0, FrechetCellFilter, fmax 0.03 eV/A) and prints the calibrated formation energy
against the data's -2.567 eV/atom. The lowest structure goes to OUT.cif.

With seed 1 the first relaxed trial (number 18; the earlier ones were rejected) lands at -2.574 eV/atom (7
meV/atom below the data's only row), keeps P2_1/c with planar BO3 (B-O 1.39-1.40 A) and relaxes to
a = 3.287, b = 9.285, c = 8.434 A, beta = 101.3 deg (1.4 % above the experiment's cell, as PBE-trained
potentials do): screening/calc/calibration_set.yaml holds its coordinates in the experimental cell.

    .venv/bin/python benchmarks/li3bo3_search.py --seed 1 --trials 40 --out /tmp/li3bo3
"""

from __future__ import annotations

import argparse
import json
from collections import Counter

import numpy as np

DATA_E_FORM = -2.567  # eV/atom, the data's only Li3BO3 row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--trials", type=int, default=40, help="random placements (rejected ones count)")
    parser.add_argument("--out", default="li3bo3_best", help="the lowest structure goes to OUT.cif")
    args = parser.parse_args()

    from pymatgen.core import Lattice, Structure
    from pymatgen.io.ase import AseAtomsAdaptor

    from screening.calc.calculators import load_calculator
    from screening.calc.calibration import SHIPPED_DIR
    from screening.calc.relax import relax

    calc, _ = load_calculator("sevennet", {})
    shipped = sorted(SHIPPED_DIR.glob("sevennet-*.json"))[0]
    mu = json.loads(shipped.read_text())["mu"]
    lattice = Lattice.from_parameters(3.265, 9.180, 8.316, 90, 101.05, 90)
    rng = np.random.default_rng(args.seed)
    best = None
    for trial in range(1, args.trials + 1):
        boron = rng.random(3)
        axes, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        angles = np.array([0.0, 2 * np.pi / 3, 4 * np.pi / 3])
        oxygen_cart = lattice.get_cartesian_coords(boron) + 1.37 * (np.outer(np.cos(angles), axes[0])
                                                                   + np.outer(np.sin(angles), axes[1]))
        coords = [boron, *lattice.get_fractional_coords(oxygen_cart), *rng.random((3, 3))]
        try:
            structure = Structure.from_spacegroup(14, lattice, ["B", "O", "O", "O", "Li", "Li", "Li"], coords, tol=0.3)
        except Exception:  # noqa: BLE001 - an unlucky placement that pymatgen cannot expand: next trial
            continue
        if len(structure) != 28 or (structure.distance_matrix + 9 * np.eye(28)).min() < 1.25:
            continue
        atoms = AseAtomsAdaptor.get_atoms(structure)
        start = relax(atoms, calc, cell=False, fmax=0.5, steps=80)
        final = relax(start.atoms, calc, fmax=0.03, steps=400)
        counts = Counter(final.atoms.get_chemical_symbols())
        e_form = final.energy_per_atom - sum(n / len(final.atoms) * mu[el] for el, n in counts.items())
        print(f"trial {trial}: E_form {e_form:.4f} eV/atom ({1000 * (e_form - DATA_E_FORM):+.0f} meV/atom vs data), "
              f"{final.atoms.get_volume() / len(final.atoms):.2f} A^3/atom, converged {final.converged}", flush=True)
        if best is None or e_form < best[0]:
            best = (e_form, trial)
            final.atoms.write(f"{args.out}.cif")
    print("lowest:", best)


if __name__ == "__main__":
    main()
