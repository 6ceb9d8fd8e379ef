"""New entry tables from old ones: user rows merged in, and entries left out (``--exclude-entries``).

``exclude_entries(table, formulas)`` removes every entry (data or user) of the given reduced formulas.
Elemental references cannot be left out (every hull needs them) and a formula the table lacks is an
error (a typo must not pass silently). The result's DataSource records what was left out, with the
energies, in ``extra["excluded_entries"]``, and its sha256 covers the exclusion.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
from pymatgen.core import Composition

from screening.chem import parse_formula
from screening.data.table import DataSource, EntryTable
from screening.errors import InputError

MAX_EXCLUDED = 1000  # formulas one run may leave out


def excluded_names(formulas) -> list[str]:
    """Reduced formulas of `formulas` (each parsed as a formula), in order, without repeats."""
    if isinstance(formulas, str):
        formulas = [formulas]
    formulas = list(formulas or [])
    if len(formulas) > MAX_EXCLUDED:
        raise InputError(f"{len(formulas)} formulas to exclude, more than {MAX_EXCLUDED}")
    names = []
    for text in formulas:
        comp = parse_formula(text)
        if len(comp.elements) == 1:
            raise InputError(f"cannot exclude {text.strip()}: an element's reference entry is needed by "
                             "every hull (formation energies are measured from it)")
        names.append(comp.reduced_formula)
    return list(dict.fromkeys(names))


def exclude_entries(table: EntryTable, formulas) -> EntryTable:
    """`table` without the rows of `formulas` (reduced formulas; see the module doc). None or an empty
    list returns `table` itself."""
    names = excluded_names(formulas)
    if not names:
        return table
    rows = []
    for name in names:
        i = table.row_of(name)
        if i is None:
            raise InputError(f"cannot exclude {name}: the data has no entry of that composition")
        rows.append(i)
    keep = np.ones(len(table), dtype=bool)
    keep[rows] = False
    src = table.source
    extra = dict(src.extra or {})
    removed = [{"formula": table.names[i].item(), "energy": float(table.energies[i]),
                "n_polymorphs": int(table.n_polymorphs[i]), "user_supplied": bool(table.user_supplied[i])}
               for i in rows]
    previous = list(extra.get("excluded_entries", []))
    extra["excluded_entries"] = previous + removed
    digest = hashlib.sha256(json.dumps({"base": src.sha256, "excluded": sorted(names)},
                                       sort_keys=True).encode()).hexdigest()
    description = (f"{src.description}; " if src.description else "") + "excluded: " + ", ".join(names)
    source = DataSource(kind=src.kind, path=src.path, sha256=digest, description=description, extra=extra)
    return subset(table, keep, source)


def subset(table: EntryTable, keep: np.ndarray, source: DataSource) -> EntryTable:
    """The rows of `table` where `keep` is true (same elements, same order), with `source`."""
    counts = np.diff(table.indptr)
    entry_keep = np.repeat(keep, counts)
    indptr = np.concatenate([[0], np.cumsum(counts[keep])]).astype(np.int64)
    return EntryTable(table.elements, table.names[keep], indptr, table.indices[entry_keep],
                      table.amounts[entry_keep], table.energies[keep], table.n_polymorphs[keep], source,
                      table.user_supplied[keep])


def merged_table(base: EntryTable, rows: dict[str, tuple[Composition, float]], counts: dict[str, int],
                 source: DataSource, kept_counts: dict[str, int] | None = None) -> EntryTable:
    """Base rows not replaced by `rows`, plus `rows` (flagged user_supplied), sorted by name like the base.

    kept_counts: {name: polymorphs to add} for base rows that stay (a higher user polymorph).
    """
    new_names = sorted(rows)
    elements = sorted(set(base.elements) | {str(el) for c, _ in rows.values() for el in c.elements})
    col = {el: j for j, el in enumerate(elements)}
    remap = np.array([col[el] for el in base.elements], dtype=np.int64)  # monotonic: keeps row order
    keep = ~np.isin(base.names, np.array(new_names, dtype=str)) if new_names else \
        np.ones(len(base), dtype=bool)
    base_counts = np.diff(base.indptr)
    entry_keep = np.repeat(keep, base_counts)
    indices = [remap[base.indices[entry_keep]] if len(base.elements) else base.indices[entry_keep]]
    amounts = [base.amounts[entry_keep]]
    counts_all = [base_counts[keep]]
    for name in new_names:
        comp = rows[name][0]
        pairs = sorted((col[str(el)], float(a)) for el, a in comp.items())
        indices.append(np.array([j for j, _ in pairs], dtype=np.int64))
        amounts.append(np.array([a for _, a in pairs], dtype=float))
        counts_all.append(np.array([len(pairs)], dtype=np.int64))
    base_poly = base.n_polymorphs.astype(np.int64).copy()
    for name, extra in (kept_counts or {}).items():
        base_poly[base.row_of(name)] += extra
    names = np.concatenate([base.names[keep], np.array(new_names, dtype=str)])
    energies = np.concatenate([base.energies[keep], [rows[n][1] for n in new_names]])
    n_poly = np.concatenate([base_poly[keep], [counts.get(n, 1) for n in new_names]])
    flags = np.concatenate([base.user_supplied[keep], np.ones(len(new_names), dtype=bool)])
    counts_arr = np.concatenate(counts_all).astype(np.int64)
    flat_indices = np.concatenate(indices).astype(np.int64)
    flat_amounts = np.concatenate(amounts)
    starts = np.concatenate([[0], np.cumsum(counts_arr)[:-1]]).astype(np.int64)
    order = np.argsort(names, kind="stable")
    sorted_counts = counts_arr[order]
    indptr = np.concatenate([[0], np.cumsum(sorted_counts)]).astype(np.int64)
    gather = np.repeat(starts[order] - indptr[:-1], sorted_counts) + np.arange(indptr[-1])
    return EntryTable(elements, names[order], indptr, flat_indices[gather], flat_amounts[gather],
                      energies[order], n_poly[order], source, flags[order])
