"""Which entries of a table lie on the convex hull: the only ones that can be phases of a hull point.

An entry's stability is decided in its own chemical system (the hull at a composition only involves
entries within that composition's elements), so the stable set of a whole table is found system by
system, from the fewest elements up: the hull of a system needs only its own entries and the stable
entries of its subsystems. Every hull energy, decomposition and line of a larger system is then the
same on the stable entries alone, with a tenth of the columns or fewer (screening.screen.pruning).
"""

from __future__ import annotations

import numpy as np

from screening.data.table import EntryTable
from screening.thermo.hull import HullSolver

# eV/atom: an entry this close to the hull counts as on it (kept: an entry on a facet is one of the
# equally good decompositions there, and dropping it could change which one the LP reports).
STABLE_TOL = 1e-6


def hull_stable_mask(table: EntryTable, tol: float = STABLE_TOL) -> np.ndarray:
    """Bool per row: the entry is within `tol` eV/atom of the hull of its own chemical system."""
    masks = table.element_masks()
    systems, inverse = np.unique(masks, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    sizes = np.array([bin(int(a)).count("1") + bin(int(b)).count("1") for a, b in systems])
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(len(systems) + 1))
    stable = np.zeros(len(table), dtype=bool)
    for size in np.unique(sizes):
        known = np.flatnonzero(stable)  # the stable entries of every smaller system
        known_masks = masks[known]
        for s in np.flatnonzero(sizes == size):
            own = order[bounds[s]:bounds[s + 1]]
            if size == 1:  # one row per composition: the element itself
                stable[own] = True
                continue
            inside = known[((known_masks[:, 0] & ~systems[s, 0]) == 0) & ((known_masks[:, 1] & ~systems[s, 1]) == 0)]
            rows = np.sort(np.concatenate([inside, own]))
            first = own[0]
            elements = tuple(sorted(table.elements[j] for j in table.indices[table.indptr[first]:table.indptr[first + 1]]))
            chemsys = table.chemsys_of_rows(rows, elements)
            solver = HullSolver(chemsys)
            position = np.searchsorted(rows, own)
            for row, j in zip(own, position):
                hull = solver.energy(chemsys.fractions[j])
                stable[row] = chemsys.energies[j] - hull <= tol
    return stable
