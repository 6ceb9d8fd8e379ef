"""Screen configuration (YAML), validated strictly: an unknown key or a bad value is one clear error.

An empty file is the default screen: every Li-containing composition of the data against the seed
stacks, with the default thresholds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from screening.chem import parse_formula
from screening.errors import InputError
from screening.safe_io import LIMITS, load_yaml, quote, read_text
from screening.screen.candidates import (ANION_FILTERS, TOXIC_OR_SCARCE, Candidate, DataFilter,
                                         candidate_limit, charge_balanced_spaces, charge_balanced_work,
                                         check_enumeration, from_data, from_library, grid, grid_size, merge,
                                         space_elements)
from screening.screen.cluster_settings import SlurmSettings, parse_cluster
from screening.screen.materials import by_role, resolve_material
from screening.screen.rank import DEFAULT_WEIGHTS as SCORE_WEIGHTS
from screening.screen.stacks import SEED_STACKS, Stack, make_stack
from screening.thermo.error_defaults import CORRECTION_SCHEMES, DEFAULT_INDEPENDENT_ERROR, MAX_DRAWS
from screening.thermo.error_model import ErrorModel, check_error

STACK_KEYS = {"electrode", "electrolyte", "potential", "side", "name"}
MAX_SHARDS = 1000  # shard files (and evaluate jobs) per workflow run

DEFAULT_THRESHOLDS = {
    # criterion: (column, minimum or maximum, default value); None disables a criterion
    "e_above_hull": 0.025,  # eV/atom, at most (about kT at room temperature)
    "window_shortfall": 0.0,  # V, at most: the window must contain the electrode potential
    "reduction_limit": None,  # V, at most: the window's lower limit whatever the stack (Xiao 2019: 2.7)
    "oxidation_limit": None,  # V, at least: the window's upper limit (Xiao 2019: 4.0)
    "rxn_electrode": -0.05,  # eV/atom, at least: closed, with the discharged electrode
    "rxn_electrode_open": -0.05,  # eV/non-Li atom, at least: open to Li, the charged electrode at its potential
    "rxn_electrolyte": -0.05,  # eV/atom, at least: closed system
    "rxn_electrolyte_open": None,  # eV/non-Li atom, at least: open to Li at the electrode potential
    # property criteria (screening.screen.rank): off unless set
    "band_gap": None,  # eV (PBE), at least: the coating insulates electrons (Xiao 2019: 0.5)
    "interphase": None,  # true: no mixed-conducting interphase with the electrode or the electrolyte
    "ald_evidence": None,  # "components" or "reported": at least that evidence of an ALD process
    "practicality": None,  # true: no practicality flag (hydrous, nitrate, toxic, scarce, ...)
    "polyanion_oxide": None,  # true: an oxide with an oxyanion former (P, B, Si, S, ...; Xiao 2019)
}
FUNNEL_ORDER = ("e_above_hull", "band_gap", "reduction_limit", "oxidation_limit", "window_shortfall",
                "rxn_electrode", "rxn_electrode_open", "rxn_electrolyte", "rxn_electrolyte_open", "interphase",
                "ald_evidence", "practicality", "polyanion_oxide")
DEFAULT_SCORE_WEIGHTS = dict(SCORE_WEIGHTS)  # the score's terms: screening.screen.rank


@dataclass
class ScreenConfig:
    run: str = "default"
    entries: str | None = None
    user_entries: tuple[str, ...] = ()
    user_scheme: str | None = None
    user_mode: str = "add"  # user entries: "add" (one more polymorph) or "replace"
    exclude_entries: tuple[str, ...] = ()  # formulas whose entries are left out
    data_filter: DataFilter | None = field(default_factory=DataFilter)
    max_e_above_hull: float | None = None  # enumeration filter, eV/atom
    grids: list[dict] = field(default_factory=list)
    amorphisation_penalty: float = 0.0
    charge_balanced: list[dict] = field(default_factory=list)
    library: bool = True
    stacks: list[Stack] = field(default_factory=list)
    stack_specs: list[dict] = field(default_factory=list)
    thresholds: dict = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    score_weights: dict = field(default_factory=lambda: dict(DEFAULT_SCORE_WEIGHTS))
    funnel_order: tuple[str, ...] = FUNNEL_ORDER
    workers: int | None = None
    cluster: str = "local"  # where dask workers run: "local" or "slurm" (screening.screen.cluster_settings)
    slurm: SlurmSettings | None = None
    chunk_size: int = 48
    # first-order errors of every number (None: off) and Monte Carlo of the top candidates per stack
    error_model: ErrorModel | None = field(default_factory=ErrorModel)
    monte_carlo: dict = field(default_factory=lambda: dict(DEFAULT_MONTE_CARLO))
    energy_errors: ErrorModel = field(default_factory=ErrorModel)  # the model, used by Monte Carlo either way
    raw: dict = field(default_factory=dict)
    amorphous_used: list = field(default_factory=list)  # amorphous grid points computed by candidates()

    def error_spec(self) -> tuple | None:
        """The error model as plain values for tasks: (independent, corrections, entry errors) or None."""
        m = self.error_model
        return None if m is None else (m.independent, m.corrections, tuple(m.entry_errors))

    def table(self):
        """The entry table of this screen (data file plus user entries)."""
        from screening.data.sources import load_table

        if self.user_scheme and not self.user_entries:
            raise InputError("user_scheme / --user-scheme applies only with user entries (user_entries: or "
                             "--user-entries)")
        return load_table(self.entries, self.user_entries, self.user_scheme, user_mode=self.user_mode,
                          exclude_entries=self.exclude_entries)

    def enumeration_work(self) -> int:
        """Stoichiometries the charge-balanced spaces will try (SMACT), all together."""
        return sum(charge_balanced_work(space_elements(tuple(spec["base"]), metal),
                                        spec.get("max_stoichiometry", 4))
                   for spec in self.charge_balanced for metal in spec["metals"])

    def candidates(self, table, progress: Callable[[int], None] | None = None) -> list[Candidate]:
        """Every source's candidates, merged (sorted by formula). `progress(n)`: n more stoichiometries
        of the charge-balanced spaces tried (see enumeration_work)."""
        check_enumeration(self.enumeration_work(), "the charge-balanced spaces of this screen")
        groups = []
        if self.data_filter is not None:
            groups.append(from_data(table, self.data_filter))
        self.amorphous_used = []
        for spec in self.grids:
            if spec.get("amorphous", False) is not False:
                groups.append(self._amorphous_grid(spec, table))
                continue
            groups.append(grid(tuple(spec["ends"]), spec.get("step", 0.1),
                               spec.get("penalty", self.amorphisation_penalty)))
        for spec in self.charge_balanced:
            groups.append(charge_balanced_spaces(tuple(spec["base"]), tuple(spec["metals"]),
                                                 spec.get("max_stoichiometry", 4),
                                                 penalty=self.amorphisation_penalty, progress=progress))
        if self.library:
            groups.append(from_library())
        if sum(len(g) for g in groups) > candidate_limit():
            raise InputError(f"the screen has {sum(len(g) for g in groups)} candidates, more than the limit of "
                             f"{candidate_limit()} (SCREENING_MAX_CANDIDATES); narrow the sources")
        merged = merge(*groups)
        missing = sorted({el for c in merged for el in c.elements if not table.has_element(el)})
        if missing:
            raise InputError(f"the data has no entry for element {missing[0]} (candidate set)")
        if not merged:
            raise InputError("the candidate set is empty: loosen the filters or add a source")
        return merged


    def _amorphous_grid(self, spec: dict, table) -> list[Candidate]:
        """Grid points at hull energy + computed amorphous energy (screening.screen.amorphous_grid)."""
        from screening.screen.amorphous_grid import amorphous_grid

        return amorphous_grid(spec, table, self.amorphous_used)


_TOP_KEYS = {"run", "entries", "user_entries", "user_scheme", "candidates", "stacks", "thresholds", "funnel",
             "score_weights", "execution", "workflow", "user_mode", "exclude_entries", "uncertainty"}
_UNCERTAINTY_KEYS = {"first_order", "independent_error", "correction_errors", "entry_errors",
                     "monte_carlo_top", "draws", "seed"}
DEFAULT_MONTE_CARLO = {"top": 50, "draws": 200, "seed": 0}
MAX_ENTRY_ERRORS = 1000
_CANDIDATE_KEYS = {"data", "grids", "amorphisation_penalty", "charge_balanced", "library",
                   "max_e_above_hull"}
_DATA_KEYS = {"require", "allow", "exclude", "exclude_radioactive", "exclude_noble_gases",
              "exclude_toxic_scarce", "toxic_scarce", "anions", "max_elements", "min_elements"}


def load_config(path: str | Path | None) -> ScreenConfig:
    """Read and validate a YAML config; None gives the default screen."""
    raw: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise InputError(f"config file not found: {path}")
        text = read_text(path, "config", limit=LIMITS.max_config_bytes)
        raw = load_yaml(text, f"config {path}")
        if raw is None:
            raw = {}
    return config_from_dict(raw, source=str(path) if path else "defaults")


def config_from_dict(raw: dict, source: str = "config") -> ScreenConfig:
    if not isinstance(raw, dict):
        raise InputError(f"{source}: the top level must be a mapping of keys to values")
    _check_keys(raw, _TOP_KEYS, source)
    cfg = ScreenConfig(raw=raw)
    cfg.run = _run_name(raw.get("run", "default"), source)
    entries = raw.get("entries")
    if entries is not None and (not isinstance(entries, str) or not entries.strip()):
        raise InputError(f"{source}: 'entries' must be a file path, got {_q(entries)}")
    cfg.entries = entries
    cfg.user_entries = tuple(_strings(raw.get("user_entries", []) or [], "user_entries", source))
    scheme = raw.get("user_scheme")
    if scheme is not None and scheme not in ("legacy", "MP2020"):
        raise InputError(f"{source}: 'user_scheme' must be legacy or MP2020, got {_q(scheme)}")
    cfg.user_scheme = scheme
    # --- user mode and exclusions (checked by the data layer: screening.data.sources) ---
    mode = raw.get("user_mode", "add")
    if mode not in ("add", "replace"):
        raise InputError(f"{source}: 'user_mode' must be add or replace, got {_q(mode)}")
    cfg.user_mode = mode
    cfg.exclude_entries = tuple(_strings(raw.get("exclude_entries", []) or [], "exclude_entries", source))
    if cfg.exclude_entries:
        from screening.data.selection import excluded_names

        excluded_names(cfg.exclude_entries)  # formulas, not elements: refused before any job
    # --- end ---
    cand = raw.get("candidates", {}) or {}
    if not isinstance(cand, dict):
        raise InputError(f"{source}: 'candidates' must be a mapping")
    _check_keys(cand, _CANDIDATE_KEYS, f"{source}: candidates")
    data = cand.get("data", {})
    if data is False or data is None:
        cfg.data_filter = None
    else:
        if not isinstance(data, dict):
            raise InputError(f"{source}: candidates.data must be a mapping or false")
        _check_keys(data, _DATA_KEYS, f"{source}: candidates.data")
        cfg.data_filter = DataFilter(
            require=_symbols(data.get("require", ["Li"]), "require", source),
            allow=None if data.get("allow") is None else _symbols(data["allow"], "allow", source),
            exclude=_symbols(data.get("exclude", []), "exclude", source),
            exclude_radioactive=_bool(data.get("exclude_radioactive", True), "exclude_radioactive", source),
            exclude_noble_gases=_bool(data.get("exclude_noble_gases", True), "exclude_noble_gases", source),
            exclude_toxic_scarce=_bool(data.get("exclude_toxic_scarce", False), "exclude_toxic_scarce", source),
            toxic_scarce=_symbols(data.get("toxic_scarce", list(TOXIC_OR_SCARCE)), "toxic_scarce", source),
            anions=None if data.get("anions") is None else _anions(data["anions"], source),
            max_elements=_int(data.get("max_elements"), "max_elements", source, 1, 12),
            min_elements=_int(data.get("min_elements", 2), "min_elements", source, 1, 12))
    cfg.max_e_above_hull = _number(cand.get("max_e_above_hull"), "max_e_above_hull", source, 0, 10)
    cfg.amorphisation_penalty = _number(cand.get("amorphisation_penalty", 0.0), "amorphisation_penalty",
                                        source, 0, 2)
    for spec in _list(cand.get("grids", []), "grids", source):
        if not isinstance(spec, dict) or not isinstance(spec.get("ends"), list) or len(spec["ends"]) != 2:
            raise InputError(f"{source}: each grid needs 'ends: [A, B]' (and optionally step, penalty)")
        _check_keys(spec, {"ends", "step", "penalty", "amorphous"}, f"{source}: grid")
        ends = [resolve_material(_text(end, "grid end", source)).composition for end in spec["ends"]]
        if ends[0].reduced_composition == ends[1].reduced_composition:
            raise InputError(f"{source}: grid ends are the same composition ({ends[0].reduced_formula})")
        _number(spec.get("step", 0.1), "grid step", source, 1e-3, 0.5)
        if "penalty" in spec:
            _number(spec["penalty"], "grid penalty", source, 0, 2)
        if spec.get("amorphous", False) is not False:
            from screening.screen.amorphous_grid import check_amorphous_grid

            check_amorphous_grid(spec, source)
        cfg.grids.append(spec)
    points = sum(grid_size(spec.get("step", 0.1)) for spec in cfg.grids)
    if points > candidate_limit():
        raise InputError(f"{source}: the grids have {points} points, more than the limit of {candidate_limit()} "
                         "candidates (SCREENING_MAX_CANDIDATES)")
    for spec in _list(cand.get("charge_balanced", []), "charge_balanced", source):
        if not isinstance(spec, dict) or "base" not in spec or "metals" not in spec:
            raise InputError(f"{source}: each charge_balanced space needs 'base' and 'metals'")
        _check_keys(spec, {"base", "metals", "max_stoichiometry"}, f"{source}: charge_balanced")
        _symbols(spec["base"], "base", source)
        _symbols(spec["metals"], "metals", source)
        _int(spec.get("max_stoichiometry", 4), "max_stoichiometry", source, 1, 12)
        cfg.charge_balanced.append(spec)
    check_enumeration(cfg.enumeration_work(), f"{source}: the charge-balanced spaces")
    cfg.library = _bool(cand.get("library", True), "library", source)
    specs = raw.get("stacks", SEED_STACKS)
    specs = _stack_matrix(specs, source) if isinstance(specs, dict) else _list(specs, "stacks", source)
    if not specs:
        raise InputError(f"{source}: 'stacks' is empty")
    if len(specs) > MAX_STACKS:
        raise InputError(f"{source}: {len(specs)} stacks, more than {MAX_STACKS}")
    for spec in specs:
        _check_stack_spec(spec, source)
    cfg.stack_specs = specs
    cfg.stacks = [make_stack(spec) for spec in specs]
    names = [s.name for s in cfg.stacks]
    if len(set(names)) != len(names):
        raise InputError(f"{source}: two stacks share the name {sorted(n for n in names if names.count(n) > 1)[0]}")
    thresholds = raw.get("thresholds", {}) or {}
    if not isinstance(thresholds, dict):
        raise InputError(f"{source}: 'thresholds' must be a mapping")
    _check_keys(thresholds, set(DEFAULT_THRESHOLDS), f"{source}: thresholds")
    for key, value in thresholds.items():
        if value is None:
            cfg.thresholds[key] = None
        elif key in ("interphase", "practicality", "polyanion_oxide"):
            cfg.thresholds[key] = _bool(value, f"threshold {key}", source) or None
        elif key == "ald_evidence":
            if value not in ("components", "reported"):
                raise InputError(f"{source}: threshold ald_evidence must be 'components', 'reported' or null, "
                                 f"got {_q(value)}")
            cfg.thresholds[key] = value
        elif key == "band_gap":
            cfg.thresholds[key] = _number(value, f"threshold {key}", source, 0, 20)
        else:
            cfg.thresholds[key] = _number(value, f"threshold {key}", source, -20, 20)
    funnel = raw.get("funnel")
    if funnel is not None:
        if (not isinstance(funnel, list) or not all(isinstance(n, str) for n in funnel)
                or len(set(funnel)) != len(funnel) or set(funnel) - set(DEFAULT_THRESHOLDS)):
            raise InputError(f"{source}: 'funnel' must list criteria once each, from: "
                             f"{', '.join(DEFAULT_THRESHOLDS)}")
        cfg.funnel_order = tuple(funnel) + tuple(n for n in FUNNEL_ORDER if n not in funnel)
    weights = raw.get("score_weights", {}) or {}
    _check_keys(weights, set(DEFAULT_SCORE_WEIGHTS), f"{source}: score_weights")
    for key, value in weights.items():
        cfg.score_weights[key] = _number(value, f"score weight {key}", source, 0, 100)
    execution = raw.get("execution", {}) or {}
    _check_keys(execution, {"workers", "chunk_size", "cluster", "slurm"}, f"{source}: execution")
    cfg.workers = _int(execution.get("workers"), "workers", source, 0, 1024)
    cfg.cluster, cfg.slurm = parse_cluster(execution, source)
    if cfg.cluster == "slurm" and cfg.workers is not None:
        raise InputError(f"{source}: execution 'workers' counts local processes; on Slurm use "
                         "execution: {slurm: {maximum_workers: N}}")
    cfg.chunk_size = _int(execution.get("chunk_size", 48), "chunk_size", source, 1, 100000)
    workflow = raw.get("workflow", {}) or {}
    _check_keys(workflow, {"shards", "workers_per_job", "stack_groups"}, f"{source}: workflow")
    _int(workflow.get("shards", 8), "shards", source, 1, MAX_SHARDS)
    _int(workflow.get("stack_groups", 1), "stack_groups", source, 1, MAX_SHARDS)
    _int(workflow.get("workers_per_job", 0), "workers_per_job", source, 0, 1024)
    cfg.energy_errors, first_order, cfg.monte_carlo = _uncertainty(raw.get("uncertainty", {}), source)
    cfg.error_model = cfg.energy_errors if first_order else None
    return cfg


def _uncertainty(section, source: str) -> tuple[ErrorModel, bool, dict]:
    """The `uncertainty:` section: (error model, first-order columns wanted, Monte Carlo settings)."""
    section = {} if section is None else section
    if not isinstance(section, dict):
        raise InputError(f"{source}: 'uncertainty' must be a mapping")
    _check_keys(section, _UNCERTAINTY_KEYS, f"{source}: uncertainty")
    where = f"{source}: uncertainty"
    entry_errors = section.get("entry_errors", {}) or {}
    if not isinstance(entry_errors, dict) or len(entry_errors) > MAX_ENTRY_ERRORS:
        raise InputError(f"{where}: entry_errors must map at most {MAX_ENTRY_ERRORS} formulas to errors (eV/atom)")
    errors = []
    for formula, value in entry_errors.items():
        comp = parse_formula(_text(formula, "entry_errors formula", source))
        errors.append((comp.reduced_formula, check_error(f"{where}: the error of {comp.reduced_formula}", value)))
    corrections = section.get("correction_errors", "mp2020")
    if corrections not in CORRECTION_SCHEMES:
        raise InputError(f"{where}: correction_errors must be {' or '.join(CORRECTION_SCHEMES)}, got {_q(corrections)}")
    model = ErrorModel(check_error(f"{where}: independent_error", section.get("independent_error",
                                                                              DEFAULT_INDEPENDENT_ERROR)),
                       corrections, tuple(sorted(errors)))
    monte_carlo = {"top": _int(section.get("monte_carlo_top", DEFAULT_MONTE_CARLO["top"]), "monte_carlo_top",
                               source, 0, 10000),
                   "draws": _int(section.get("draws", DEFAULT_MONTE_CARLO["draws"]), "draws", source, 1, MAX_DRAWS),
                   "seed": _int(section.get("seed", 0), "seed", source, 0, 2**62)}
    first_order = _bool(section.get("first_order", True), "first_order", source)
    return model, first_order, monte_carlo


def _check_keys(mapping: dict, allowed: set, where: str) -> None:
    if not isinstance(mapping, dict):
        raise InputError(f"{where} must be a mapping")
    unknown = sorted(_q(k) for k in mapping if k not in allowed)
    if unknown:
        raise InputError(f"{where}: unknown key {unknown[0]} (allowed: {', '.join(sorted(allowed))})")


def _run_name(value, source: str) -> str:
    if not isinstance(value, (str, int)) or isinstance(value, bool) or (isinstance(value, int) and value.bit_length() > 332):
        raise InputError(f"{source}: run name must be text, got {_q(value)}")
    text = str(value)
    if (not text or len(text) > 100 or not all(ch.isascii() and (ch.isalnum() or ch in "-_.") for ch in text)
            or text[0] == "."):
        raise InputError(f"{source}: run name {_q(text)} must be 1-100 ASCII letters, digits, '-', '_' or '.'")
    return text


def _check_stack_spec(spec, source: str) -> None:
    """A stack is a mapping of short scalars (make_stack checks the rest): nothing huge reaches a message."""
    if not isinstance(spec, dict):
        raise InputError(f"{source}: each stack must be a mapping with electrode and electrolyte, got {_q(spec)}")
    _check_keys(spec, STACK_KEYS, f"{source}: stack")
    for key, value in spec.items():
        if key == "potential":
            if value is not None:
                _number(value, "stack potential", source, -5, 10)
        elif not (key == "side" and value is None):
            _text(value, f"stack {key}", source)


def _anions(value, source: str) -> tuple[str, ...]:
    names = tuple(_strings(value, "anions", source))
    unknown = [name for name in names if name not in ANION_FILTERS]
    if unknown:
        raise InputError(f"{source}: unknown anion class {_q(unknown[0])} (known: {', '.join(sorted(ANION_FILTERS))})")
    return names


MAX_STACKS = 2000
_LIBRARY_SETS = {"library-cathodes": "cathode", "library-anodes": "anode", "library-electrolytes": "electrolyte"}


def _stack_matrix(value: dict, source: str) -> list[dict]:
    """stacks: {electrodes: [...], electrolytes: [...]}: every electrode with every electrolyte (electrodes
    first). A list may be a word for a library set: library-cathodes, library-anodes, library-electrolytes."""
    _check_keys(value, {"electrodes", "electrolytes"}, f"{source}: stacks")
    sides = []
    for key in ("electrodes", "electrolytes"):
        items = value.get(key)
        if isinstance(items, str) and items in _LIBRARY_SETS:
            items = [m.name for m in by_role(_LIBRARY_SETS[items])]
        if not isinstance(items, list) or not items or len(items) > MAX_STACKS:
            raise InputError(f"{source}: stacks '{key}' must be a list of 1..{MAX_STACKS} materials or one of "
                             f"{', '.join(_LIBRARY_SETS)}, got {_q(items)}")
        sides.append([_text(item, f"stacks {key}", source) for item in items])
    if len(sides[0]) * len(sides[1]) > MAX_STACKS:
        raise InputError(f"{source}: {len(sides[0])} electrodes x {len(sides[1])} electrolytes is more than "
                         f"{MAX_STACKS} stacks")
    return [{"electrode": e, "electrolyte": x} for e in sides[0] for x in sides[1]]


def _list(value, name: str, source: str) -> list:
    if not isinstance(value, list):
        raise InputError(f"{source}: '{name}' must be a list")
    return value


def _strings(value, name: str, source: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(f"{source}: '{name}' must be a list of strings")
    return value


def _symbols(value, name: str, source: str) -> tuple[str, ...]:
    from pymatgen.core import Element

    out = []
    for symbol in _strings(value, name, source):
        try:
            Element(symbol)
        except (ValueError, KeyError):
            raise InputError(f"{source}: unknown element {_q(symbol)} in '{name}'") from None
        out.append(symbol)
    return tuple(out)


def _bool(value, name: str, source: str) -> bool:
    if not isinstance(value, bool):
        raise InputError(f"{source}: '{name}' must be true or false, got {_q(value)}")
    return value


def _number(value, name: str, source: str, low: float, high: float) -> float | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 1000:
        raise InputError(f"{source}: '{name}' = {_q(value)} is outside {low}..{high}")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{source}: '{name}' must be a finite number, got {_q(value)}")
    if not low <= value <= high:
        raise InputError(f"{source}: '{name}' = {_q(value)} is outside {low}..{high}")
    return float(value)


def _int(value, name: str, source: str, low: int, high: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{source}: '{name}' must be an integer, got {_q(value)}")
    if not low <= value <= high:
        raise InputError(f"{source}: '{name}' = {_q(value)} is outside {low}..{high}")
    return value


def _q(value) -> str:
    """A value for an error message, cut short (an alias bomb or a 5000-digit integer stays one short line)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 332:
        return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    try:
        return quote(value)
    except ValueError:  # repr of a nested integer beyond Python's digit limit
        return f"a {type(value).__name__} holding a huge number"


def _text(value, name: str, source: str) -> str:
    """A material name or formula (a string or number, at most 200 characters)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)) or \
            (isinstance(value, int) and value.bit_length() > 332):
        raise InputError(f"{source}: {name} must be a formula or a library name, got {_q(value)}")
    text = str(value)
    if len(text) > 200:
        raise InputError(f"{source}: {name} is {len(text)} characters long, more than 200: {_q(text)}")
    return text
