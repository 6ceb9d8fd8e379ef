"""User-supplied entries merged into a base entry table (pymatgen entry JSON and VASP runs).

``merge_user_entries(base, paths, scheme=None, references=None, mode="add")`` reads each file, puts
every entry on the base table's energy scale (formation energy, eV/atom, elements at 0) and returns a
new EntryTable in which each user entry is one more polymorph (mode "add") or replaces the data's
entries of its composition (mode "replace").

Files (read by screening.data.user_files)
    * pymatgen entry JSON (monty format, optionally .gz/.bz2/.xz): one entry dict, a list of
      entry dicts, or {"entries": [...]}. Accepted entry classes are below; anything else (plain
      dicts, structures, ExpEntry, GibbsComputedStructureEntry, GrandPotPDEntry, ...) is refused.
      Decoding is screening.safe_io's: every "@module"/"@class" is checked against an allow-list
      before anything is decoded (no module a file names is imported), duplicate keys, NaN,
      integers over 40 digits and nesting over 64 levels are refused, and the decompressed size is
      capped (SCREENING_MAX_DECOMPRESSED_BYTES).
    * VASP ``vasprun.xml`` (optionally compressed): parsed with ``Vasprun(path, parse_dos=False,
      parse_eigen=False)`` and ``get_computed_entry(inc_structure=True)``. A truncated or
      malformed file (a run that did not finish), a run whose last ionic step did not converge
      electronically or whose relaxation hit NSW, or an XML file that is not a vasprun is refused.
    The file type is told from the content (``<`` = XML, ``{``/``[`` = JSON), not from the name,
    after leading whitespace and a byte-order mark; UTF-16/32 files are read too. A vasprun with a
    DOCTYPE or ENTITY declaration is refused (entities can read other files).

Which energies mean what
    * ``PDEntry`` (exactly that class) and ``ComputedEntry`` / ``ComputedStructureEntry`` with
      ``data["energy_type"] == "formation"``: the energy is a FORMATION energy per cell (eV), already
      on the base's scale. It is used as given (divided by the number of atoms); no corrections,
      no references. Elemental formation entries must not lie below 0 and add no row.
    * Any other ``ComputedEntry`` / ``ComputedStructureEntry`` (including vasprun runs): an ABSOLUTE
      DFT energy. Its uncorrected energy is corrected with the compatibility scheme of the base
      data, and converted with elemental references of the same scheme:
      ``E_f = (E_corrected - sum_el n_el * mu_el) / N``, where ``mu_el`` (eV/atom) is the lowest
      corrected energy per atom among the user's elemental entries of el, or the value of
      ``references[el]`` (a corrected energy per atom in the same scheme) when that is lower or
      there is no elemental entry. A compound whose element has no reference is refused, naming
      the element. Elemental computed entries serve only as references: element rows stay at 0.

Schemes
    * ``"legacy"``: pymatgen ``MaterialsProjectCompatibility`` (the pre-2020 MP corrections). This
      is the scheme of the embedded snapshot (mp_e_form_2019.csv.gz).
    * ``"MP2020"``: ``MaterialsProject2020Compatibility``, the scheme of a Materials Project table
      of thermo type ``GGA_GGA+U``.
    ``scheme=None`` takes the base's scheme (``infer_scheme``). A given scheme must agree with the
    base's when that is known; it is required (for absolute-energy entries only) when the base's
    scheme is unknown (a custom CSV or entries JSON). A Materials Project table of thermo type
    ``GGA_GGA+U_R2SCAN`` accepts formation-energy entries only: MaterialsProjectDFTMixingScheme
    shifts energies per chemical system, which no per-entry correction can reproduce.

Refused, with one line (InputError unless the file itself is unreadable, which is DataError)
    * energies outside the ranges of screening.data.entry_checks: formation energies outside
      -20..10 eV/atom (the range of --energy; checked again after an absolute energy is converted),
      absolute energies outside -100..10 eV/atom before corrections; more than 100,000 atoms in a
      cell, or an element amount below 1e-6;
    * entries with no ``parameters["run_type"]``, or of a functional the scheme does not correct
      (only GGA/GGA+U; PBE and PBE+U are taken as GGA and GGA+U), or user entries of different
      functionals (e.g. r2SCAN and GGA);
    * a GGA+U entry (run_type ``...+U`` or ``is_hubbard``) without its ``hubbards`` U values, an
      entry whose run_type or is_hubbard contradicts its U values, and any entry whose U values
      differ from the scheme's (MPRelaxSet), as pymatgen's scheme decides;
    * entries without POTCAR information (``potcar_spec`` or ``potcar_symbols``), POTCARs that are
      not the scheme's PBE set, and user entries using different POTCARs for the same element
      (symbol, version date, or hash where given);
    * entries already carrying corrections of another scheme (e.g. MP2020 adjustments when the
      base is legacy) or corrections of unknown origin (a manual ``correction``): give the
      uncorrected entry (``energy_adjustments = []``) and it is corrected here;
    * entries the compatibility scheme rejects (CompatibilityError or None);
    * one composition given both as a formation energy and as an absolute energy (two different
      energy scales) with energies more than 1 meV/atom apart.

Merging
    Entries of the same composition within the user files are polymorphs: the lowest is kept and
    counted in n_polymorphs. Mode "add" (the default): a user entry is one more polymorph of its
    composition, and the lowest of the data's and the user's sets the row, as pymatgen's
    PhaseDiagram does; the row is flagged ``user_supplied`` only when the user's energy is used.
    Mode "replace": a user composition replaces the base row of the same reduced composition even
    when it is higher in energy, and is flagged. Elements of user compounds that the base lacks get a row
    at 0 (flagged). The result's DataSource has kind ``<base kind>+user``, the base path, a sha256
    over the base sha256, the scheme, the mode, the references and the user files' sha256, and in
    ``extra`` the base's extra plus ``base_sha256``, ``energy_scheme``, ``user_mode``,
    ``user_references``, ``user_entries``: [{"path", "sha256", "format", "n_entries", "scheme"}]
    and ``user_compositions``: [{"formula", "energy" (the user's lowest, eV/atom), "data_energy"
    (the data's, or null), "used": "user" or "data"}].
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
import warnings
from pathlib import Path

from pymatgen.core import Composition, Element

from screening.data.entry_checks import check_energy
from screening.data.selection import merged_table
from screening.data.snapshot import SNAPSHOT_DESCRIPTION, SNAPSHOT_NAME
from screening.data.table import DataSource, EntryTable
from screening.data.user_files import UserItem, one_line, read_user_file
from screening.errors import InputError

LEGACY = "legacy"
MP2020 = "MP2020"
SCHEMES = {LEGACY: "the legacy MP corrections (MaterialsProjectCompatibility)",
           MP2020: "the MP2020 corrections (MaterialsProject2020Compatibility)"}
_ALIASES = {"legacy": LEGACY, "mp": LEGACY, "mpcompatibility": LEGACY,
            "materialsprojectcompatibility": LEGACY, "mp2020": MP2020,
            "mp2020compatibility": MP2020, "materialsproject2020compatibility": MP2020}
_COMPAT_CLASSES = {"MaterialsProjectCompatibility": LEGACY,
                   "MaterialsProject2020Compatibility": MP2020}
_LEGACY_NAMES = re.compile(r"^MP (Anion|Advanced|GGA|Gas|Aqueous) Correction$|^MPRelaxSet Potcar Correction$")
R2SCAN_MIXED = "GGA_GGA+U_R2SCAN"
CONFLICT_TOL = 1e-3  # eV/atom: a formation and an absolute entry of one composition must agree
_GGA_FAMILY = "GGA/GGA+U"
USER_MODES = ("add", "replace")


def normalise_scheme(scheme: str) -> str:
    """"legacy" or "MP2020" for a scheme name or alias (case-insensitive); InputError otherwise."""
    key = re.sub(r"[\s_\-]", "", str(scheme)).lower()
    if key not in _ALIASES:
        raise InputError(f"unknown correction scheme {scheme!r}: use 'legacy' "
                         "(MaterialsProjectCompatibility) or 'MP2020' (MaterialsProject2020Compatibility)")
    return _ALIASES[key]


def infer_scheme(source: DataSource) -> str | None:
    """The correction scheme of a base table's energies, or None when it cannot be known.

    The embedded snapshot is "legacy"; a Materials Project GGA_GGA+U table is "MP2020"; a table
    already merged with user entries keeps its scheme. The GGA_GGA+U_R2SCAN mix, custom CSV files
    and entries JSON files have no single known scheme (None).
    """
    extra = source.extra or {}
    if extra.get("energy_scheme") in SCHEMES:
        return extra["energy_scheme"]
    kind = source.kind.removesuffix("+user")
    if kind == "materials-project":
        return MP2020 if extra.get("thermo_type") == "GGA_GGA+U" else None
    if kind == "snapshot-csv" and (source.description == SNAPSHOT_DESCRIPTION
                                   or Path(source.path).name == SNAPSHOT_NAME):
        return LEGACY
    return None


def check_user_mode(mode: str | None) -> str:
    """"add" (default for None) or "replace"; InputError otherwise."""
    mode = "add" if mode is None else mode
    if mode not in USER_MODES:
        raise InputError(f"user mode must be 'add' (one more polymorph) or 'replace' (instead of the "
                         f"data's entries), not {one_line(repr(mode), 40)}")
    return mode


def merge_user_entries(base: EntryTable, paths, scheme: str | None = None,
                       references: dict[str, float] | None = None, mode: str = "add") -> EntryTable:
    """A new table: `base` with the entries of the user files `paths` merged in (see the module doc).

    mode "add": each user entry is one more polymorph (the lowest sets the row, flagged user_supplied
    when it is the user's); "replace": user compositions replace the base rows of the same reduced
    composition, even when higher in energy. Polymorphs within the user files keep the lowest.
    scheme: "legacy" or "MP2020" (aliases accepted), default the base's (infer_scheme).
    references: {element: corrected energy, eV/atom, in the same scheme}, used besides elemental
    entries in the files. An empty `paths` returns `base` itself.

    Raises InputError or DataError with one line naming the file and entry.
    """
    paths = list(dict.fromkeys(Path(p).expanduser() for p in (paths or [])))
    mode = check_user_mode(mode)
    if not paths:
        return base
    wanted = normalise_scheme(scheme) if scheme is not None else None
    refs = _check_references(references)
    files, items = [], []
    for path in paths:
        fmt, sha, file_items = read_user_file(path)
        files.append({"path": str(path.resolve()), "sha256": sha, "format": fmt,
                      "n_entries": len(file_items),
                      "computed": any(it.kind == "computed" for it in file_items)})
        items.extend(file_items)
    computed = [it for it in items if it.kind == "computed"]
    resolved = _resolve_scheme(base, wanted, needed=bool(computed))
    if computed:
        _check_computed(computed, resolved)
        _correct(computed, resolved)
    mu = _references(computed, refs)
    rows, n_poly = _formation_rows(items, mu, base)
    rows, n_poly, kept, used = _apply_mode(base, rows, n_poly, mode)
    for f in files:
        f["scheme"] = resolved if f.pop("computed") else "formation"
    source = _merged_source(base, files, resolved, mu, mode, used)
    return merged_table(base, rows, n_poly, source, kept)


def _apply_mode(base: EntryTable, rows: dict, counts: dict, mode: str):
    """(rows that set a table row, their polymorph counts, {base name: polymorphs added}, records)."""
    out_rows, out_counts, kept, used = {}, dict(counts), {}, []
    for name in sorted(rows):
        comp, energy = rows[name]
        i = base.row_of(name)
        data_energy = None if i is None else float(base.energies[i])
        record = {"formula": name, "energy": energy, "data_energy": data_energy, "used": "user"}
        if i is not None and mode == "add":
            if data_energy <= energy:  # the data's polymorph is lower: it stays, one more polymorph
                kept[name] = counts.get(name, 1)
                record["used"] = "data"
            else:
                out_rows[name] = rows[name]
                out_counts[name] = counts.get(name, 1) + int(base.n_polymorphs[i])
        else:
            out_rows[name] = rows[name]
        if len(comp.elements) > 1:
            used.append(record)
    return out_rows, out_counts, kept, used


# ---------------------------------------------------------------- schemes and checks


def _resolve_scheme(base: EntryTable, wanted: str | None, needed: bool) -> str | None:
    """The scheme for absolute energies (None when no entry needs one)."""
    source = base.source
    mixed = source.kind.removesuffix("+user") == "materials-project" and \
        (source.extra or {}).get("thermo_type") == R2SCAN_MIXED
    known = infer_scheme(source)
    if wanted is not None and known is not None and wanted != known:
        raise InputError(f"correction scheme {wanted} does not match the base data, which uses "
                         f"{SCHEMES[known]}")
    if not needed:
        return wanted or known
    if mixed:
        raise InputError(f"absolute-energy entries cannot join Materials Project {R2SCAN_MIXED} data "
                         "(MaterialsProjectDFTMixingScheme shifts energies per chemical system): give "
                         "formation energies (PDEntry) or use the GGA_GGA+U thermo type")
    scheme = wanted or known
    if scheme is None:
        raise InputError(f"the correction scheme of the base data {source.path} is unknown: name it "
                         "('legacy' or 'MP2020') to add absolute-energy entries")
    return scheme


def _functional(entry) -> tuple[str, str]:
    """(family, run_type as given); family 'GGA/GGA+U' for GGA, GGA+U, PBE, PBE+U."""
    run_type = str(entry.parameters.get("run_type"))
    key = run_type.strip().upper()
    base = key[:-2] if key.endswith("+U") else key
    return (_GGA_FAMILY if base in ("GGA", "PBE") else base), run_type


def _potcars(entry, where: str) -> list[tuple]:
    """[(element, symbol, set label or None, date or None, hash or None)] of an entry."""
    params = entry.parameters
    spec = params.get("potcar_spec") or []
    titles = [(d.get("titel") or d.get("symbol"), d.get("hash")) for d in spec if isinstance(d, dict)]
    if not any(t for t, _ in titles):
        titles = [(s, None) for s in (params.get("potcar_symbols") or []) if s]
    if not titles:
        raise InputError(f"{where} has no POTCAR information (parameters potcar_spec or "
                         "potcar_symbols): cannot check it was run with the scheme's settings")
    out = []
    for title, hsh in titles:
        tokens = str(title).split()
        if len(tokens) == 1:  # a bare symbol, e.g. from a potcar_spec without titel
            tokens = ["", tokens[0]]
        label, symbol = tokens[0], tokens[1]
        date = tokens[2] if len(tokens) > 2 else None
        match = re.match(r"[A-Z][a-z]?", symbol)
        element = match.group(0) if match else symbol
        out.append((element, symbol, label or None, date, hsh or None))
    return out


def _adjustment_origin(adj) -> str:
    """The scheme an energy adjustment came from: 'legacy', 'MP2020' or a description."""
    cls = getattr(adj, "cls", None)
    cls_name = cls.get("@class") if isinstance(cls, dict) else None
    if cls_name in _COMPAT_CLASSES:
        return _COMPAT_CLASSES[cls_name]
    name = str(getattr(adj, "name", ""))
    if name.startswith("MP2020 "):
        return MP2020
    if _LEGACY_NAMES.match(name):
        return LEGACY
    if cls_name:
        return f"{cls_name} ({name})"
    return f"unknown origin ('{name}', {float(getattr(adj, 'value', math.nan)):.3f} eV)"


def _check_computed(items: list[UserItem], scheme: str) -> None:
    from pymatgen.io.vasp.sets import MPRelaxSet

    families: dict[str, UserItem] = {}
    for it in items:
        entry = it.entry
        for adj in entry.energy_adjustments:
            origin = _adjustment_origin(adj)
            if origin != scheme:
                origin = SCHEMES.get(origin, f"a correction of {origin}")
                raise InputError(f"{it.where} already carries {origin}, but the base data use "
                                 f"{SCHEMES[scheme]}: give the uncorrected entry "
                                 "(energy_adjustments = [])")
        if not entry.parameters.get("run_type"):
            raise InputError(f"{it.where} has no parameters['run_type']: cannot tell which "
                             "functional it used")
        family, _ = _functional(entry)
        families.setdefault(family, it)
    if len(families) > 1:
        (f1, a), (f2, b) = list(families.items())[:2]
        raise InputError(f"user entries mix functionals: {_functional(a.entry)[1]} ({a.where}) and "
                         f"{_functional(b.entry)[1]} ({b.where})")
    family, only = next(iter(families.items()))
    if family != _GGA_FAMILY:
        raise InputError(f"{only.where} was computed with {_functional(only.entry)[1]}: "
                         f"{SCHEMES[scheme]} apply to GGA/GGA+U runs only")
    expected_set = str(MPRelaxSet.CONFIG.get("POTCAR_FUNCTIONAL", "PBE"))
    seen: dict[str, tuple] = {}
    for it in items:
        params = it.entry.parameters
        _, run_type = _functional(it.entry)
        if (run_type.upper().endswith("+U") or params.get("is_hubbard")) and not params.get("hubbards"):
            raise InputError(f"{it.where} is a GGA+U run without its U values (parameters "
                             "'hubbards'): cannot check them against the scheme")
        hubbards = params.get("hubbards") or {}
        try:
            has_u = any(abs(float(u)) > 1e-8 for u in dict(hubbards).values())
        except (TypeError, ValueError):
            raise InputError(f"{it.where}: parameters 'hubbards' must map elements to U values (eV)") from None
        if has_u and not run_type.upper().endswith("+U"):
            raise InputError(f"{it.where}: run_type {run_type} contradicts its U values {dict(hubbards)}")
        if "is_hubbard" in params and bool(params["is_hubbard"]) != has_u:
            raise InputError(f"{it.where}: is_hubbard={params['is_hubbard']} contradicts its U values "
                             f"{dict(hubbards)}")
        for element, symbol, label, date, hsh in _potcars(it.entry, it.where):
            if label is not None and "PBE" not in label.upper():
                raise InputError(f"{it.where}: POTCAR '{label} {symbol}' is not a PBE PAW potential, "
                                 f"which {SCHEMES[scheme]} require")
            if label is not None and label.upper().startswith("PBE") and label != expected_set:
                raise InputError(f"{it.where}: POTCAR set {label} ({symbol}); {SCHEMES[scheme]} were "
                                 f"fitted with the {expected_set} set")
            prev = seen.get(element)
            if prev is None:
                seen[element] = (symbol, label, date, hsh, it.where)
                continue
            p_symbol, p_label, p_date, p_hash, p_where = prev
            differs = (symbol != p_symbol
                       or (date and p_date and date != p_date)
                       or (hsh and p_hash and hsh != p_hash)
                       or (label and p_label and label.upper().startswith("PBE")
                           and p_label.upper().startswith("PBE") and label != p_label))
            if differs:
                mine = " ".join(x for x in (label, symbol, date) if x)
                theirs = " ".join(x for x in (p_label, p_symbol, p_date) if x)
                raise InputError(f"user entries use different POTCARs for {element}: {mine} "
                                 f"({it.where}) and {theirs} ({p_where})")


def _compatibility(scheme: str):
    from pymatgen.entries.compatibility import (MaterialsProject2020Compatibility,
                                                MaterialsProjectCompatibility)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if scheme == LEGACY:
            return MaterialsProjectCompatibility(compat_type="Advanced")
        return MaterialsProject2020Compatibility(compat_type="Advanced")


def _correct(items: list[UserItem], scheme: str) -> None:
    """Replace each item's energy by its corrected absolute energy under `scheme`."""
    from pymatgen.entries.compatibility import CompatibilityError

    compat = _compatibility(scheme)
    for it in items:
        entry = copy.deepcopy(it.entry)
        entry.energy_adjustments = []
        run_type = str(entry.parameters.get("run_type"))
        if run_type.upper() in ("PBE", "PBE+U"):  # GGA=PE with PBE POTCARs is MP's "GGA"
            entry.parameters = {**entry.parameters, "run_type": "GGA" + run_type[3:]}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                processed = compat.process_entry(entry, inplace=True, on_error="raise")
        except (CompatibilityError, ValueError, KeyError, TypeError) as exc:
            reason = str(exc).split(" for {")[0]
            raise InputError(f"{it.where} is rejected by {SCHEMES[scheme]}: "
                             f"{one_line(reason, 140)}") from None
        if processed is None:
            raise InputError(f"{it.where} is rejected by {SCHEMES[scheme]}")
        energy = float(processed.energy)
        if not math.isfinite(energy):
            raise InputError(f"{it.where} has a non-finite corrected energy")
        it.energy = energy


def _check_references(references) -> dict[str, float]:
    if not references:
        return {}
    if not isinstance(references, dict):
        raise InputError("references must map element symbols to energies (eV/atom)")
    out = {}
    for key, value in references.items():
        try:
            symbol = Element(str(key).strip()).symbol
        except (ValueError, KeyError):
            raise InputError(f"references: {key!r} is not an element") from None
        try:
            energy = float(value)
        except (TypeError, ValueError):
            energy = math.nan
        if not math.isfinite(energy):
            raise InputError(f"references: the energy of {symbol} must be a finite number (eV/atom)")
        out[symbol] = energy
    return out


def _references(computed: list[UserItem], refs: dict[str, float]) -> dict[str, float]:
    """mu_el (eV/atom): lowest corrected elemental energy per atom in the files or `refs`."""
    mu = dict(refs)
    for it in computed:
        if len(it.comp.elements) == 1:
            el = str(it.comp.elements[0])
            per_atom = it.energy / it.comp.num_atoms
            if el not in mu or per_atom < mu[el]:
                mu[el] = per_atom
    for it in computed:
        for el in it.comp.elements:
            if str(el) not in mu:
                raise InputError(f"no elemental reference for {el} (needed by {it.where}): add an "
                                 f"elemental {el} entry computed with the same settings to the user "
                                 f"files, or give its corrected energy per atom as a reference")
    return mu


def _formation_rows(items: list[UserItem], mu: dict[str, float], base: EntryTable):
    """{name: (reduced composition, eV/atom)} and {name: polymorph count} of the user rows."""
    best: dict[str, dict[str, tuple]] = {}  # name -> kind -> (energy, comp, where)
    counts: dict[str, int] = {}
    for it in items:
        natoms = it.comp.num_atoms
        if it.kind == "computed":
            e_form = (it.energy - sum(mu[str(el)] * amt for el, amt in it.comp.items())) / natoms
        else:
            e_form = it.energy / natoms
        check_energy(e_form, it.where)
        if len(it.comp.elements) == 1:
            if it.kind == "formation" and e_form < -CONFLICT_TOL:
                raise InputError(f"{it.where}: an element's formation energy is 0 by definition, not "
                                 f"{e_form:.4f} eV/atom")
            continue  # elements: references only, their rows stay at 0
        name = it.comp.reduced_formula
        counts[name] = counts.get(name, 0) + 1
        slot = best.setdefault(name, {})
        if it.kind not in slot or e_form < slot[it.kind][0]:
            slot[it.kind] = (e_form, it.comp.reduced_composition, it.where)
    rows: dict[str, tuple[Composition, float]] = {}
    for name, slot in best.items():
        if len(slot) > 1:
            (ea, _, wa), (eb, _, wb) = slot["formation"], slot["computed"]
            if abs(ea - eb) > CONFLICT_TOL:
                raise InputError(f"{name} is given on two energy scales with different energies: "
                                 f"{ea:.4f} eV/atom as a formation energy ({wa}) and {eb:.4f} eV/atom "
                                 f"from a corrected DFT energy ({wb})")
        energy, comp, _ = min(slot.values(), key=lambda t: t[0])
        rows[name] = (comp, float(energy))
    for el in sorted({str(el) for comp, _ in rows.values() for el in comp.elements}):
        if not base.has_element(el):
            comp = Composition(el).reduced_composition
            rows.setdefault(comp.reduced_formula, (comp, 0.0))
            counts.setdefault(comp.reduced_formula, 1)
    return rows, counts


# ---------------------------------------------------------------- the merged table


def _merged_source(base: EntryTable, files: list[dict], scheme: str | None,
                   mu: dict[str, float], mode: str, used: list[dict]) -> DataSource:
    src = base.source
    extra = dict(src.extra or {})
    previous = list(extra.get("user_entries", []))
    prev_refs = dict(extra.get("user_references", {}))
    digest = hashlib.sha256(json.dumps(
        {"base": src.sha256, "scheme": scheme, "references": sorted(mu.items()), "mode": mode,
         "files": [f["sha256"] for f in files]}, sort_keys=True).encode()).hexdigest()
    extra.update({"base_sha256": extra.get("base_sha256", src.sha256),
                  "energy_scheme": scheme or extra.get("energy_scheme"),
                  "user_mode": mode,
                  "user_references": {**prev_refs, **{k: mu[k] for k in sorted(mu)}},
                  "user_entries": previous + files,
                  "user_compositions": list(extra.get("user_compositions", [])) + used})
    n = sum(f["n_entries"] for f in files)
    description = (f"{src.description} + " if src.description else "") + \
        f"{n} user entr{'y' if n == 1 else 'ies'} from {len(files)} file{'' if len(files) == 1 else 's'}"
    kind = src.kind if src.kind.endswith("+user") else src.kind + "+user"
    return DataSource(kind=kind, path=src.path, sha256=digest, description=description, extra=extra)
