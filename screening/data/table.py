"""Columnar table of entries (one row per distinct composition) and chemical-system subsets.

Energies are formation energies in eV/atom relative to the elemental references of the data set.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field

import numpy as np
from pymatgen.core import Composition

from screening.errors import InputError

SUBSET_LOOKUP_MAX_ELEMENTS = 12  # above: 4,095+ subsets, so scan every row's mask instead


@dataclass(frozen=True)
class DataSource:
    """Where entries came from: recorded in every result."""

    kind: str  # "snapshot-csv", "entries-json", "materials-project", ...
    path: str
    sha256: str
    description: str = ""
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"kind": self.kind, "path": self.path, "sha256": self.sha256,
                "description": self.description, **self.extra}


@dataclass(frozen=True)
class ChemSys:
    """The entries of one chemical system, dense, ready for linear programming.

    fractions[i, j] is the atom fraction of elements[j] in entry i; energies are eV/atom.
    One row per distinct reduced composition (the lowest-energy polymorph).
    """

    elements: tuple[str, ...]
    fractions: np.ndarray
    energies: np.ndarray
    names: tuple[str, ...]
    atoms_per_formula: np.ndarray  # atoms in the reduced formula named by names[i]

    def __post_init__(self):
        index = {name: i for i, name in enumerate(self.names)}
        object.__setattr__(self, "_index", index)

    @property
    def size(self) -> int:
        return len(self.names)

    def with_energies(self, energies: np.ndarray) -> "ChemSys":
        """The same system with other energies (eV/atom, one per row), sharing the name index: a Monte
        Carlo re-costs a system hundreds of times, and rebuilding the index was 4 % of its time."""
        other = copy.copy(self)
        object.__setattr__(other, "energies", energies)
        return other

    def index_of(self, name: str) -> int | None:
        """Row of the entry whose reduced formula is name, or None."""
        return self._index.get(name)

    def energy_of(self, comp: Composition) -> float | None:
        """Lowest entry energy (eV/atom) at exactly this reduced composition, or None."""
        i = self.index_of(comp.reduced_formula)
        return None if i is None else float(self.energies[i])

    @classmethod
    def from_pairs(cls, rows: list[tuple[Composition, float]]) -> "ChemSys":
        """Build from (composition, energy eV/atom) pairs, keeping the lowest energy per composition."""
        best: dict[str, tuple[Composition, float]] = {}
        for comp, energy in rows:
            name = comp.reduced_formula
            if name not in best or energy < best[name][1]:
                best[name] = (comp.reduced_composition, float(energy))
        elements = tuple(sorted({str(el) for comp, _ in best.values() for el in comp.elements}))
        names = tuple(sorted(best))
        frac = np.zeros((len(names), len(elements)))
        col = {el: j for j, el in enumerate(elements)}
        natoms = np.zeros(len(names))
        energies = np.zeros(len(names))
        for i, name in enumerate(names):
            comp, energy = best[name]
            natoms[i] = comp.num_atoms
            energies[i] = energy
            for el, amt in comp.items():
                frac[i, col[str(el)]] = amt / comp.num_atoms
        return cls(elements, frac, energies, names, natoms)


class EntryTable:
    """All entries of a data source, one row per distinct reduced composition.

    Compositions are held sparsely (CSR over `elements`) with a 128-bit element mask per row so that
    the entries of any chemical system are found with two vectorised comparisons.
    """

    def __init__(self, elements, names, indptr, indices, amounts, energies, n_polymorphs,
                 source: DataSource, user_supplied=None):
        self.elements = tuple(elements)
        self.names = np.asarray(names, dtype=str)
        self.indptr = np.asarray(indptr, dtype=np.int64)
        self.indices = np.asarray(indices, dtype=np.int32)
        self.amounts = np.asarray(amounts, dtype=float)
        self.energies = np.asarray(energies, dtype=float)
        self.n_polymorphs = np.asarray(n_polymorphs, dtype=np.int32)
        self.source = source
        self.user_supplied = (np.zeros(len(self.names), dtype=bool) if user_supplied is None
                              else np.asarray(user_supplied, dtype=bool))
        if len(self.elements) > 128:
            raise ValueError("at most 128 elements are supported")
        self._col = {el: j for j, el in enumerate(self.elements)}
        self._row = {name: i for i, name in enumerate(self.names)}
        self._mask = self._element_masks()
        self._by_mask: dict[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.names)

    def _element_masks(self) -> np.ndarray:
        rows = np.repeat(np.arange(len(self.names)), np.diff(self.indptr))
        mask = np.zeros((len(self.names), 2), dtype=np.uint64)
        bits = np.left_shift(np.uint64(1), (self.indices % 64).astype(np.uint64))
        for half in (0, 1):
            sel = (self.indices // 64) == half
            np.bitwise_or.at(mask[:, half], rows[sel], bits[sel])
        return mask

    def _mask_of(self, elements) -> np.ndarray:
        mask = np.zeros(2, dtype=np.uint64)
        for el in elements:
            j = self._col[el]
            mask[j // 64] |= np.uint64(1) << np.uint64(j % 64)
        return mask

    def has_element(self, symbol: str) -> bool:
        return symbol in self._col

    def missing_elements(self, comp: Composition) -> list[str]:
        """Elements of comp for which the data has no entry at all."""
        return [str(el) for el in comp.elements if str(el) not in self._col]

    def composition(self, i: int) -> Composition:
        start, stop = self.indptr[i], self.indptr[i + 1]
        return Composition({self.elements[j]: a for j, a in
                            zip(self.indices[start:stop], self.amounts[start:stop])})

    def element_set(self, i: int) -> set[str]:
        """The element symbols of row i."""
        return {self.elements[j] for j in self.indices[self.indptr[i]:self.indptr[i + 1]]}

    def row_of(self, name: str) -> int | None:
        return self._row.get(name)

    def is_user_entry(self, row: int | str) -> bool:
        """Whether the energy of a row (index or reduced formula) is a user's entry, not the data's."""
        i = self.row_of(row) if isinstance(row, str) else int(row)
        return i is not None and bool(self.user_supplied[i])

    def excluded_entries(self) -> list[dict]:
        """The entries left out of this table ({"formula", "energy", "n_polymorphs", "user_supplied"})."""
        return list((self.source.extra or {}).get("excluded_entries", []))

    def rows_within(self, elements) -> np.ndarray:
        """Indices of rows whose elements are all within `elements` (a chemical system and its subsystems)."""
        unknown = [el for el in elements if el not in self._col]
        if unknown:
            raise InputError(f"the data has no entry for element {unknown[0]}")
        columns = sorted({self._col[el] for el in elements})
        if len(columns) > SUBSET_LOOKUP_MAX_ELEMENTS:
            allowed = self._mask_of(elements)
            outside = self._mask & ~allowed
            return np.flatnonzero((outside[:, 0] == 0) & (outside[:, 1] == 0))
        # the rows of each element subset by dictionary: a screen asks for thousands of 4-9 element
        # systems, and scanning every row's mask (95,000 rows) each time was 7 % of its evaluation
        by_mask = self._rows_by_mask()
        bits = [1 << j for j in columns]
        parts = []
        for size in range(1, len(bits) + 1):
            for subset in itertools.combinations(bits, size):
                rows = by_mask.get(sum(subset))
                if rows is not None:
                    parts.append(rows)
        return np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)

    def _rows_by_mask(self) -> dict[int, np.ndarray]:
        """{element mask as a Python int: the rows with exactly those elements, ascending}."""
        if self._by_mask is None:
            groups: dict[int, list[int]] = {}
            for row, (low, high) in enumerate(self._mask.tolist()):
                groups.setdefault(low | (high << 64), []).append(row)
            self._by_mask = {mask: np.asarray(rows, dtype=np.int64) for mask, rows in groups.items()}
        return self._by_mask

    def chemsys(self, elements) -> ChemSys:
        """Dense entries of the chemical system spanned by `elements` (all its subsystems included)."""
        elements = tuple(sorted(set(elements)))
        return self.chemsys_of_rows(self.rows_within(elements), elements)

    def element_masks(self) -> np.ndarray:
        """(rows, 2) uint64: bit j of a row's mask is set when it holds elements[j]."""
        return self._mask

    def subset(self, keep: np.ndarray) -> "EntryTable":
        """The table of the rows where `keep` (bool per row) is true, in the same order, same source."""
        keep = np.asarray(keep, dtype=bool)
        rows = np.flatnonzero(keep)
        counts = np.diff(self.indptr)[rows]
        starts = self.indptr[rows]
        flat = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
        return EntryTable(self.elements, self.names[rows], np.concatenate([[0], np.cumsum(counts)]),
                          self.indices[flat], self.amounts[flat], self.energies[rows],
                          self.n_polymorphs[rows], self.source, self.user_supplied[rows])

    def chemsys_of_rows(self, rows: np.ndarray, elements) -> ChemSys:
        """Dense entries of the given rows (all within `elements`, sorted symbols), in row order."""
        elements = tuple(elements)
        rows = np.asarray(rows, dtype=np.int64)
        col = {el: j for j, el in enumerate(elements)}
        remap = np.full(len(self.elements), -1, dtype=np.int64)
        for el, j in col.items():
            remap[self._col[el]] = j
        frac = np.zeros((len(rows), len(elements)))
        counts = np.diff(self.indptr)[rows]
        flat_rows = np.repeat(np.arange(len(rows)), counts)
        starts = self.indptr[rows]
        flat_idx = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
        frac[flat_rows, remap[self.indices[flat_idx]]] = self.amounts[flat_idx]
        natoms = frac.sum(axis=1)
        frac /= natoms[:, None]
        missing = [el for el in elements if not np.any(frac[:, col[el]] == 1.0)]
        if missing:
            raise InputError(f"the data has no elemental reference entry for {missing[0]}")
        return ChemSys(elements, frac, self.energies[rows].copy(),
                       tuple(self.names[rows].tolist()), natoms)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Arrays for the on-disk cache (numpy .npz, no pickles)."""
        return {"elements": np.array(self.elements), "names": self.names, "indptr": self.indptr,
                "indices": self.indices, "amounts": self.amounts, "energies": self.energies,
                "n_polymorphs": self.n_polymorphs, "user_supplied": self.user_supplied}

    @classmethod
    def from_compositions(cls, rows: list[tuple[Composition, float]], source: DataSource,
                          user_supplied: set[str] | None = None) -> "EntryTable":
        """Build from (composition, eV/atom) pairs; polymorphs collapse to the lowest energy."""
        best: dict[str, list] = {}
        for comp, energy in rows:
            name = comp.reduced_formula
            if name in best:
                best[name][2] += 1
                if energy < best[name][1]:
                    best[name][:2] = [comp.reduced_composition, energy]
            else:
                best[name] = [comp.reduced_composition, float(energy), 1]
        elements = sorted({str(el) for comp, _, _ in best.values() for el in comp.elements})
        col = {el: j for j, el in enumerate(elements)}
        names = sorted(best)
        indptr, indices, amounts, energies, npoly = [0], [], [], [], []
        for name in names:
            comp, energy, count = best[name]
            for el, amt in sorted(comp.items(), key=lambda kv: col[str(kv[0])]):
                indices.append(col[str(el)])
                amounts.append(amt)
            indptr.append(len(indices))
            energies.append(energy)
            npoly.append(count)
        flags = [name in (user_supplied or set()) for name in names]
        return cls(elements, names, indptr, indices, amounts, energies, npoly, source, flags)
