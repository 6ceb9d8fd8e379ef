"""`Explorer`: stability, windows, interface reactions and decompositions on one set of entries.

Each method runs what the command of the same name runs (screening.interfaces.commands) and returns a
result object of screening.api.results; errors are the CLI's InputError/DataError with its one-line
messages.
"""

from __future__ import annotations

import os
from pathlib import Path

from screening.api.reactions import atoms_counted, kj_per_mol, reaction_sides
from screening.api.results import DecompositionResult, KinkResult, PairResult, StabilityResult, WindowResult
from screening.errors import InputError

SOURCES = ("snapshot", "mp")
THERMO_TYPES = ("GGA_GGA+U", "GGA_GGA+U_R2SCAN")
NO_REACTION = "no reaction"


def as_material(value):
    """A Material from a formula or library name (with @charged / @4.3V), or a pymatgen Composition."""
    from pymatgen.core import Composition

    from screening.chem import parse_formula
    from screening.screen.materials import Material, resolve_material

    if isinstance(value, Material):
        return value
    if isinstance(value, Composition):
        try:
            comp = Composition(value.element_composition)
        except Exception:
            raise InputError(f"unusable composition {str(value)[:60]!r}") from None
        text = "".join(f"{el.symbol}{f'{amt:.12f}'.rstrip('0').rstrip('.')}" for el, amt in comp.items())
        comp = parse_formula(text)
        name = comp.reduced_formula
        return Material(name, comp, spec=name)
    if isinstance(value, str):
        return resolve_material(value)
    raise InputError(f"a material is a formula, a library name or a pymatgen Composition, not "
                     f"{type(value).__name__}")


class Explorer:
    """Thermodynamic analyses on one set of entries (formation energies, eV/atom).

    data: None (the embedded Materials Project snapshot, or $SCREENING_ENTRIES), a data file path
    (snapshot CSV or JSON of pymatgen entries with formation energies), or, like `entries`, in-memory
    pymatgen entries.
    entries: a list of PDEntry / ComputedEntry / ComputedStructureEntry, or a PhaseDiagram (its
    entries). Their energies are read as pymatgen's PhaseDiagram reads them: `entry.energy` (corrected,
    for a ComputedEntry) relative to the lowest elemental entry of each element, so total DFT energies
    with elemental entries and formation energies with elements at 0 both work; every element needs
    an elemental entry.
    user_entries: entry files (pymatgen JSON, vasprun.xml) merged in as `--user-entries` does.
    source: "snapshot" (a file or the entries given) or "mp" (the Materials Project through mp-api,
    MP_API_KEY; the entries of each material's chemical system, cached).
    user_scheme, user_mode ("add"/"replace"), exclude_entries, thermo_type, use_cache: as the CLI's
    options of the same names.
    """

    def __init__(self, data=None, *, entries=None, user_entries=(), source: str = "snapshot",
                 user_scheme: str | None = None, user_mode: str = "add", exclude_entries=(),
                 thermo_type: str | None = None, use_cache: bool = True):
        from screening.data.user_entries import check_user_mode

        if source not in SOURCES:
            raise InputError(f"source must be 'snapshot' or 'mp', not {str(source)[:40]!r}")
        if data is not None and not isinstance(data, (str, os.PathLike)):
            if entries is not None:
                raise InputError("give the entries once: as data or as entries=")
            data, entries = None, data
        if source == "mp" and (data is not None or entries is not None):
            raise InputError("source='mp' takes the entries from the Materials Project: give no data or entries")
        if thermo_type is not None and source != "mp":
            raise InputError("thermo_type applies only with source='mp' (the snapshot data has one scheme, "
                             "GGA_GGA+U)")
        if thermo_type is not None and thermo_type not in THERMO_TYPES:
            raise InputError(f"thermo_type must be one of {', '.join(THERMO_TYPES)}")
        if isinstance(user_entries, (str, os.PathLike)):
            user_entries = (user_entries,)
        if isinstance(exclude_entries, str):
            exclude_entries = (exclude_entries,)
        self.user_entries = tuple(str(p) for p in user_entries or ())
        if user_scheme is not None and not self.user_entries:
            raise InputError("user_scheme applies only with user_entries (it sets their correction scheme)")
        self.data = None if data is None else str(data)
        self.source = source
        self.user_scheme = user_scheme
        self.user_mode = check_user_mode(user_mode)
        self.exclude_entries = tuple(str(f) for f in exclude_entries or ())
        self.thermo_type = thermo_type or "GGA_GGA+U"
        self.use_cache = bool(use_cache)
        self._base = None
        self.in_memory = entries is not None
        if entries is not None:
            from screening.api.entries import table_from_entries
            from screening.data.sources import finish_table

            self._base = finish_table(table_from_entries(entries), self.user_entries, user_scheme,
                                      self.user_mode, self.exclude_entries)
        self._mp_tables: dict = {}

    def __repr__(self) -> str:
        what = ("Materials Project" if self.source == "mp" else
                self.data or (self._base.source.description if self._base is not None else "embedded snapshot"))
        return f"Explorer({what})"

    @classmethod
    def from_run(cls, path) -> "Explorer":
        """An Explorer on the entries a run folder (results/<run>) was screened with: its data file,
        user entry files, scheme, mode and excluded entries, from its provenance.json. DataError when
        the data file is no longer the one the run used (its sha256 differs)."""
        from screening.api.runs import load_run
        from screening.errors import DataError

        _, provenance = load_run(path)
        source = provenance["data_source"]
        if source.get("kind") == "materials-project":
            raise InputError(f"{path} was screened on the Materials Project: use Explorer(source='mp')")
        explorer = cls(source["path"], user_entries=tuple(provenance.get("user_entry_files") or ()),
                       user_scheme=provenance.get("user_scheme"), user_mode=source.get("user_mode") or "add",
                       exclude_entries=tuple(e["formula"] for e in source.get("excluded_entries") or ()))
        expected = source.get("sha256")
        if expected and explorer.table().source.sha256 != expected:
            raise DataError(f"the data of {path} changed since the run: {source['path']} has another sha256")
        return explorer

    # ------------------------------------------------------------------ data

    def table(self, *materials, with_li: bool = True):
        """The EntryTable the analyses use (for source='mp': the materials' chemical system)."""
        if self.source == "mp":
            from screening.data.mp_source import load_mp_entries
            from screening.data.sources import finish_table

            elements = {str(e) for m in materials for e in as_material(m).composition.elements}
            elements |= {"Li"} if with_li else set()
            key = tuple(sorted(elements))
            if key not in self._mp_tables:
                table = load_mp_entries(list(key), thermo_type=self.thermo_type, use_cache=self.use_cache)
                self._mp_tables[key] = finish_table(table, self.user_entries, self.user_scheme,
                                                    self.user_mode, self.exclude_entries)
            return self._mp_tables[key]
        if self._base is None:
            from screening.data.sources import load_table

            self._base = load_table(self.data, self.user_entries, self.user_scheme, use_cache=self.use_cache,
                                    user_mode=self.user_mode, exclude_entries=self.exclude_entries)
        return self._base

    # ------------------------------------------------------------------ analyses

    def stability(self, material, energy: float | None = None) -> StabilityResult:
        """Energy above hull, decomposition energy (eV/atom) and hull phases; `energy` (eV/atom) replaces
        the material's own formation energy. A @V state adds the decomposition open to Li at V."""
        from screening.interfaces.commands import stability_payload

        mat = as_material(material)
        energy = _energy(energy)
        payload, _ = stability_payload(self.table(mat, with_li=mat.potential is not None), mat, energy)
        return StabilityResult(**_fields(StabilityResult, payload))

    def window(self, material, as_is: bool = False, energy: float | None = None) -> WindowResult:
        """Electrochemical window vs Li/Li+ (V); as_is keeps a metastable compound's own energy."""
        from screening.interfaces.commands import agreed_potential, window_payload

        mat = as_material(material)
        potential = agreed_potential(None, [mat])
        payload, _ = window_payload(self.table(mat), mat, bool(as_is), _energy(energy), potential)
        return WindowResult(**_fields(WindowResult, payload))

    def pair(self, a, b, potential: float | None = None, *, own_energies: bool = False,
             mutual_only: bool = False) -> PairResult:
        """Interface reaction of a | b, closed, or open to Li at `potential` V vs Li/Li+ (or a material's
        @V state). Reactants at their hull energies unless own_energies; open to Li, each reactant's own
        reaction with the reservoir counts unless mutual_only (both energies are given per kink)."""
        from screening.interfaces.commands import agreed_potential, pair_payload
        from screening.thermo.analysis import analyse_pair

        mat_a, mat_b = as_material(a), as_material(b)
        potential = agreed_potential(_potential(potential), [mat_a, mat_b])
        table = self.table(mat_a, mat_b, with_li=potential is not None)
        payload, parts = pair_payload(table, mat_a, mat_b, potential, bool(own_energies), bool(mutual_only))
        other = None
        if potential is not None and not own_energies:
            other = analyse_pair(table, mat_a.composition, mat_b.composition, potential=potential,
                                 include_no_mixing_energy=bool(mutual_only)).kinks
        kinks = _kinks(payload, other, bool(mutual_only), "Li" if potential is not None else None)
        extra = {"kinks": kinks, "reaction_text": payload["reaction"], "mutual_only": bool(mutual_only),
                 "own_energies": bool(own_energies)}
        if potential is not None:
            for key, attr in (("total_min_reaction_energy", "total_reaction_energy"),
                              ("mutual_min_reaction_energy", "mutual_reaction_energy")):
                values = [getattr(k, attr) for k in kinks]
                extra[key] = None if any(v is None for v in values) else min(values)
        return PairResult(**_fields(PairResult, payload, **extra))

    def decompose(self, material, potential=None, energy: float | None = None) -> DecompositionResult:
        """Decomposition reaction energy open to Li (eV per atom of the compound) at `potential` V (a
        number or a list; default: the material's @V state, else 0 and 5 V)."""
        from screening.interfaces.commands import decompose_payload, decompose_potentials

        mat = as_material(material)
        if potential is None:
            given = []
        elif isinstance(potential, (list, tuple)):
            given = [_potential(v) for v in potential]
        else:
            given = [_potential(potential)]
        if len(given) > 1000:
            raise InputError(f"{len(given)} potentials, more than 1000")
        payload, _ = decompose_payload(self.table(mat), mat, decompose_potentials(mat, given), _energy(energy))
        return DecompositionResult(**_fields(DecompositionResult, payload))

    def screen(self, config=None, out=None, *, workers: int | None = 0, limit: int | None = None):
        """Run a screen (a config file path, a config mapping, or None for the default screen) into the
        run folder `out` (default results/<run>) on this Explorer's data file; returns the rankings
        DataFrame (load_run(out) reads it back with the provenance)."""
        from screening.execution.screen_run import run_screen
        from screening.screen.config import config_from_dict, load_config

        if self.source != "snapshot" or self.in_memory:
            raise InputError("screens use a data file (data=PATH or the embedded snapshot); --source mp "
                             "and in-memory entries serve the single-material and pair methods")
        cfg = config_from_dict(config, "config") if isinstance(config, dict) else load_config(config)
        if self.data is not None:
            cfg.entries = self.data
        if self.user_entries:
            cfg.user_entries = (*cfg.user_entries, *self.user_entries)
        if self.user_scheme:
            cfg.user_scheme = self.user_scheme
        if self.user_mode != "add":
            cfg.user_mode = self.user_mode
        if self.exclude_entries:
            cfg.exclude_entries = (*cfg.exclude_entries, *self.exclude_entries)
        folder = Path(out) if out is not None else Path("results") / cfg.run
        return run_screen(cfg, folder, workers=workers, limit=limit)


def _fields(cls, payload: dict, **extra) -> dict:
    import dataclasses

    names = {f.name for f in dataclasses.fields(cls)}
    return {**{k: v for k, v in payload.items() if k in names}, **extra}


def _number(value, what: str, low: float, high: float, unit: str) -> float:
    import math
    from numbers import Real

    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise InputError(f"{what} must be a finite number ({unit}), not {str(value)[:40]!r}")
    if not low <= float(value) <= high:
        raise InputError(f"{what} {float(value):g} {unit} is outside {low:g}..{high:g}")
    return float(value)


def _potential(value):
    return None if value is None else _number(value, "potential", -5.0, 10.0, "V vs Li/Li+")


def _energy(value):
    return None if value is None else _number(value, "formation energy", -20.0, 10.0, "eV/atom")


def _kinks(payload: dict, other, mutual_only: bool, open_element: str | None) -> list[KinkResult]:
    """KinkResults of a pair payload; `other`: the kinks of the other open-system mode, or None."""
    reactants = tuple(payload["reactants"])
    if other is not None and (len(other) != len(payload["kinks"]) or any(
            abs(o.mixing_ratio - k["mixing_ratio"]) > 1e-9 for o, k in zip(other, payload["kinks"]))):
        other = None  # not the same vertices (cannot happen on one line; never pair them wrongly)
    out = []
    for i, kink in enumerate(payload["kinks"]):
        energy = kink["reaction_energy"]
        left: dict = {}
        if kink["reaction"] != NO_REACTION:
            left, _ = reaction_sides(reactants, kink["mixing_ratio"], kink["products"], open_element)
        atoms = atoms_counted(left, open_element) if left else 0.0
        total = mutual = None
        if open_element is not None and other is not None:
            alt = other[i].reaction_energy
            mutual, total = (energy, alt) if mutual_only else (alt, energy)
        elif open_element is not None and not mutual_only:
            total = energy
        out.append(KinkResult(kink["mixing_ratio"], energy, kink["reaction"], dict(kink["products"]),
                              left, kj_per_mol(energy, atoms) + 0.0, atoms, kink.get("interphase_type"),
                              total, mutual))
    return out
