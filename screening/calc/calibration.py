"""Elemental reference energies of a calculator in the data set's frame, fitted on known compounds.

A calculator's total energies E (eV per cell) become formation energies consistent with the data by
    E_form = E / N - sum_el x_el mu_el                                    (eV/atom)
with one reference energy mu_el (eV/atom) per element. The mu_el are fitted by least squares on a
calibration set of known phases (calibration_set.yaml: elements, binaries, ternaries), each relaxed
with the calculator, against the data set's formation energy of that composition (its lowest entry):
    minimise  sum_i ( E_i / N_i - sum_el x_i,el mu_el - E_form,i(data) )^2.
The elemental solids are points of the fit (formation energy 0); they fix the gauge that charge-
balanced compounds alone leave free.

Errors are measured before the references are used: a fixed-seed `holdout_fraction` of the compounds
(only compounds whose elements all keep another compound in the fit) is kept out of a first fit and
gives the error on unseen compounds, and a leave-one-out cross-validation over the whole set (each
compound predicted by a fit on all the others; summary() "cv_*") checks that one seeded split. The
references used are then fitted on ALL the compounds (the errors above estimate that procedure; the
held-out compounds are information too wasteful to drop). The errors reported are LARGEST held-out
errors, not MAEs: the calculator's errors are not random noise around the references but
compound-specific (e.g. Nb oxides 20-50 meV/atom off in either direction), so a new compound can be as
far off as the worst unseen one. `Calibration.error` is the overall one; the error printed with an energy
is that of the structure's family or +U element (`family_error`, calibration_families).

Co, Cr, Fe, Mn, Mo, Ni, V, W have two references (with O/F: GGA+U in the data, "Fe(+U)"; else GGA), and
the error printed with an energy is that of its chemistry family: see calibration_families.

The calibration is cached per calculator (name, versions, settings), data file (sha256), calibration
set (sha256) and relaxation settings under <cache_dir>/calibration/, written atomically.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from pymatgen.core import Composition

from screening.calc import calibration_families as families
from screening.data.snapshot import atomic_write_bytes, cache_dir
from screening.errors import DataError, InputError
from screening.safe_io import LIMITS, decode_text, load_yaml, loads_json, quote, read_bytes

CALIBRATION_FORMAT = 4  # bump when the fit, the point records or the cache layout change
SET_PATH = Path(__file__).with_name("calibration_set.yaml")
# Calibrations shipped with the package, under their cache file names (which digest every input): the
# default calculator against the default data, so that a new machine's first `screening energy` takes
# seconds, not the ~90 s of building one. `screening calibrate --recalibrate` rebuilds it, and a test
# checks that the rebuild reproduces it.
SHIPPED_DIR = Path(__file__).with_name("calibrations")
_NAN_WHEN_ABSENT = ("split_predicted", "cv_predicted")  # JSON has no nan: these are null where undefined
MAX_SET_COMPOUNDS = 500  # compounds + examples of a calibration set (each build is one relaxation)
MAX_BUILDS = 10  # starting structures per compound
CALIBRATION_FMAX = 0.05
CALIBRATION_STEPS = 500


# ---------------------------------------------------------------- the calibration set


@dataclass
class CalibrationSet:
    """The compounds (and their structure builds) of a calibration, and the held-out draw."""

    compounds: list[dict]
    examples: list[dict]
    seed: int
    holdout_fraction: float
    sha256: str
    path: str

    def elements(self) -> set[str]:
        return {str(el) for c in self.compounds for el in Composition(c["formula"]).elements}

    def example(self, formula: str) -> dict:
        """The spec of a compound or example by formula (for tests and docs)."""
        want = Composition(formula).reduced_formula
        for item in self.examples + self.compounds:
            if Composition(item["formula"]).reduced_formula == want:
                return item
        raise InputError(f"{formula} is not in the calibration set {self.path}")


def load_calibration_set(path=None) -> CalibrationSet:
    """Read and check a calibration set YAML (default: the one shipped with the package).

    Read with screening.safe_io (bounded size, depth, aliases, integer digits); at most MAX_SET_COMPOUNDS
    compounds and MAX_BUILDS builds each, since every build is a relaxation.
    """
    path = Path(path).expanduser() if path else SET_PATH
    if not path.is_file():
        raise InputError(f"calibration set not found: {path}")
    what = f"calibration set {path}"
    raw_bytes = read_bytes(path, "calibration set", limit=LIMITS.max_config_bytes)
    raw = load_yaml(decode_text(raw_bytes, what), what)
    if not isinstance(raw, dict) or not isinstance(raw.get("compounds"), list) or not raw["compounds"]:
        raise InputError(f"{what} needs a non-empty 'compounds' list")
    examples = raw.get("examples") or []
    if not isinstance(examples, list):
        raise InputError(f"{what}: 'examples' must be a list")
    if len(raw["compounds"]) + len(examples) > MAX_SET_COMPOUNDS:
        raise InputError(f"{what} has {len(raw['compounds']) + len(examples)} compounds and examples, more than "
                         f"{MAX_SET_COMPOUNDS}")
    for section, listed in (("compounds", raw["compounds"]), ("examples", examples)):
        for k, item in enumerate(listed):
            _check_item(item, f"{what}: {section} item {k}")
    fraction = raw.get("holdout_fraction", 0.25)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 <= fraction < 1.0:
        raise InputError(f"{what}: holdout_fraction must be a number in [0, 1), not {quote(fraction)}")
    seed = raw.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 32:
        raise InputError(f"{what}: seed must be a whole number in [0, 2^32), not {quote(seed)}")
    return CalibrationSet(list(raw["compounds"]), list(examples), seed, float(fraction),
                          hashlib.sha256(raw_bytes).hexdigest(), str(path))


def _check_item(item, where: str) -> None:
    if not isinstance(item, dict) or "formula" not in item or not isinstance(item.get("builds"), list) \
            or not item["builds"] or not all(isinstance(b, dict) for b in item["builds"]):
        raise InputError(f"{where} needs a 'formula' and a non-empty list of 'builds'")
    if len(item["builds"]) > MAX_BUILDS:
        raise InputError(f"{where} has {len(item['builds'])} builds, more than {MAX_BUILDS}")
    formula = item["formula"]
    try:
        if not isinstance(formula, str) or len(formula) > 100:
            raise ValueError
        comp = Composition(formula)
        if not comp.num_atoms > 0 or not all(math.isfinite(v) for v in comp.values()):
            raise ValueError
    except Exception:
        raise InputError(f"{where}: {quote(formula)} is not a formula") from None


# ---------------------------------------------------------------- the fit


@dataclass
class CalibrationPoint:
    """One compound of the calibration: the calculator's relaxed energy and the data's value."""

    formula: str  # reduced formula
    role: str  # "fit" or "holdout": the split that measures the held-out error
    n_atoms: int  # atoms of the lowest build's cell
    energy_per_atom: float  # calculator, eV/atom (lowest over the builds)
    target: float  # data set's formation energy, eV/atom
    predicted: float = math.nan  # formation energy from the references used (fitted on every point)
    split_predicted: float = math.nan  # from the fit without the held-out compounds
    cv_predicted: float = math.nan  # from a fit on all the others (leave-one-out; elements: nan)
    build: int = 0  # which build was lowest
    converged: bool = True
    steps: int = 0
    seconds: float = 0.0

    @property
    def residual(self) -> float:
        """predicted - data (eV/atom), with the references used."""
        return self.predicted - self.target

    @property
    def holdout_residual(self) -> float:
        """split_predicted - data (eV/atom): the error of a held-out compound, unseen by its fit."""
        return self.split_predicted - self.target

    def fractions(self, keys: list[str]) -> np.ndarray:
        """Atomic fractions over reference keys (a +U element with O/F counts as "El(+U)")."""
        mine = families.reference_keys(self.formula)
        return np.array([mine.get(key, 0.0) for key in keys])


@dataclass
class Calibration:
    """Fitted elemental references of one calculator against one data file, with their errors."""

    calculator: dict
    data: dict  # {"path", "sha256"}
    calibration_set: dict  # {"path", "sha256"}
    relaxation: dict  # {"fmax", "steps", "optimizer"}
    mu: dict[str, float]
    points: list[CalibrationPoint]
    skipped: list[dict] = field(default_factory=list)  # [{"formula", "reason"}]
    seconds: float = 0.0
    created: str = ""
    format: int = CALIBRATION_FORMAT

    # -- errors (eV/atom)
    def _errors(self, which: str) -> np.ndarray:
        if which == "fit":  # residuals of the references used, over every point
            return np.array([abs(p.residual) for p in self.points])
        return np.array([abs(p.holdout_residual) for p in self.points if p.role == "holdout"])

    def stats(self) -> dict:
        """fit_*: residuals of the references used (all points); holdout_*: held-out compounds (eV/atom)."""
        out = {}
        for role in ("fit", "holdout"):
            err = self._errors(role)
            out[f"n_{role}"] = int(len(err))
            out[f"{role}_mae"] = float(err.mean()) if len(err) else None
            out[f"{role}_rmse"] = float(np.sqrt((err ** 2).mean())) if len(err) else None
            out[f"{role}_max"] = float(err.max()) if len(err) else None
        return out

    def cv_stats(self) -> dict:
        """Leave-one-out errors (eV/atom) over the compounds that have one."""
        err = np.array([abs(p.cv_predicted - p.target) for p in self.points if math.isfinite(p.cv_predicted)])
        if not len(err):
            return {"n_cv": 0, "cv_mae": None, "cv_rmse": None, "cv_p90": None, "cv_max": None}
        return {"n_cv": int(len(err)), "cv_mae": float(err.mean()), "cv_rmse": float(np.sqrt((err ** 2).mean())),
                "cv_p90": float(np.percentile(err, 90)), "cv_max": float(err.max())}

    @property
    def error(self) -> float:
        """The overall error: the largest held-out error (the fit's if nothing is held out); the one printed
        with an energy is `family_error`'s, which falls back on this one.

        The MAE would understate it: errors are compound-specific, not noise (see the module doc).
        """
        s = self.stats()
        return s["holdout_max"] if s["holdout_max"] is not None else s["fit_max"]

    @property
    def elements(self) -> list[str]:
        return sorted(self.mu)

    def uncovered(self, comp: Composition) -> list[str]:
        """Elements of `comp` without any reference (a +U element counts as covered by either frame's)."""
        return families.resolve(comp, self.mu)[1]

    def regime_warning(self, comp: Composition) -> str | None:
        """One line if `comp` mixes GGA and GGA+U frames in a way the references do not cover, else None."""
        return families.resolve(comp, self.mu)[2]

    def formation_energy(self, comp: Composition, energy: float) -> float:
        """Formation energy (eV/atom) of a cell of composition `comp` with total energy `energy` (eV)."""
        fractions, _ = families.check_covered(comp, self.mu, self.not_covered_message)
        return float(energy / comp.num_atoms - sum(x * self.mu[key] for key, x in fractions.items()))

    def family_stats(self) -> dict:
        """Held-out and leave-one-out errors per chemistry family (calibration_families)."""
        return families.family_stats(self.points)

    def family_error(self, comp) -> tuple[str, float, str]:
        """(family of `comp`, the error reported with its energy in eV/atom, how that error was obtained):
        its family's, or a +U reference's where that is larger (calibration_families.structure_error)."""
        return families.structure_error(self.points, self.error, comp)

    def not_covered_message(self, comp: Composition, missing: list[str]) -> str:
        return not_covered_message(self.calculator.get("name", "the calculator"), comp, missing,
                                   self.elements)

    def summary(self) -> dict:
        s = self.stats()
        return {"calculator": self.calculator, "data": self.data, "calibration_set": self.calibration_set,
                "elements": self.elements, "error": self.error,
                "fit_mae": s["fit_mae"], "fit_rmse": s["fit_rmse"], "fit_max": s["fit_max"],
                "holdout_mae": s["holdout_mae"], "holdout_rmse": s["holdout_rmse"],
                "holdout_max": s["holdout_max"], "n_fit": s["n_fit"], "n_holdout": s["n_holdout"],
                **self.cv_stats(),
                "families": {fam: {**s, "error": families.family_error(self.points, self.error, fam)[0]}
                             for fam, s in self.family_stats().items()},
                "u_elements": families.element_errors(self.points),
                "holdout": sorted(p.formula for p in self.points if p.role == "holdout"),
                "seconds": self.seconds, "created": self.created}

    def as_dict(self) -> dict:
        out = asdict(self)
        for point, p in zip(out["points"], self.points):
            point["residual"] = p.residual
            for key in _NAN_WHEN_ABSENT:
                if not math.isfinite(point[key]):
                    point[key] = None  # e.g. elements have no leave-one-out value
        return out

    @classmethod
    def from_dict(cls, raw: dict) -> "Calibration":
        points = [CalibrationPoint(**{k: (math.nan if k in _NAN_WHEN_ABSENT and v is None else v)
                                      for k, v in p.items() if k != "residual"}) for p in raw["points"]]
        kwargs = {k: raw[k] for k in ("calculator", "data", "calibration_set", "relaxation", "mu",
                                      "skipped", "seconds", "created", "format")}
        return cls(points=points, **kwargs)

    def table_text(self) -> str:
        """The points, one per line, for `screening calibrate`."""
        lines = [f"  {'compound':<10} {'family':<18} {'split':<8} {'data':>8} {'calc':>8} {'error':>8} {'unseen':>8}"
                 "   (eV/atom; errors in meV/atom: with the references used, and from the fit "
                 "without the compound: held-out split, else leave-one-out)"]
        order = {fam: k for k, fam in enumerate(("elements",) + families.FAMILIES)}
        for p in sorted(self.points, key=lambda p: (p.role != "fit", order[families.family(p.formula)], p.formula)):
            flag = "" if p.converged else "  (not converged)"
            unseen = p.split_predicted if p.role == "holdout" else p.cv_predicted
            unseen_text = f"{1000 * (unseen - p.target):8.1f}" if math.isfinite(unseen) else f"{'':8}"
            lines.append(f"  {p.formula:<10} {families.family(p.formula):<18} {p.role:<8} {p.target:8.4f} {p.predicted:8.4f} "
                         f"{1000 * p.residual:8.1f} {unseen_text}{flag}")
        return "\n".join(lines)


def not_covered_message(name: str, comp: Composition, missing: list[str], covered) -> str:
    return (f"the {name} calibration has no reference energy for {', '.join(missing)} (in "
            f"{comp.reduced_formula}); it covers {', '.join(sorted(covered))}: add compounds of "
            f"{missing[0]} to a calibration set (--calibration-set FILE.yaml)")


def split_holdout(points: list[CalibrationPoint], fraction: float, seed: int) -> None:
    """Mark a fixed-seed `fraction` of the compounds (never elements) as held out.

    Compounds are drawn in a seeded random order; one is held out only if each of its elements keeps
    another compound in the fit (a metal alone does not say how its oxide or halide is described), so
    the held-out errors are those of compounds the fit has not seen, of elements it has seen bound.
    """
    compounds = sorted(p.formula for p in points if len(_symbols(p.formula)) > 1)
    n_hold = int(round(fraction * len(compounds)))
    order = [compounds[i] for i in np.random.default_rng(seed).permutation(len(compounds))]
    held: list[str] = []
    for name in order:
        if len(held) >= n_hold:
            break
        rest = [c for c in compounds if c != name and c not in held]
        if all(any(el in _symbols(c) for c in rest) for el in _symbols(name)):
            held.append(name)
    for p in points:
        p.role = "holdout" if p.formula in held else "fit"


def _symbols(formula: str) -> set[str]:
    """The reference keys of a compound: its elements, a +U element with O/F as "El(+U)"."""
    return set(families.reference_keys(formula))


def fit_references(points: list[CalibrationPoint], *, all_points: bool = False) -> dict[str, float]:
    """Least-squares mu_el on the fit points (or on every point); sets every point's `predicted`.

    DataError if the references are not determined.
    """
    fit = list(points) if all_points else [p for p in points if p.role == "fit"]
    elements = sorted({el for p in fit for el in _symbols(p.formula)})
    if not fit:
        raise DataError("the calibration has no compound to fit")
    A = np.array([p.fractions(elements) for p in fit])
    b = np.array([p.energy_per_atom - p.target for p in fit])
    if np.linalg.matrix_rank(A) < len(elements):
        raise DataError(f"the calibration cannot determine references for {', '.join(elements)}: "
                        "too few independent compounds (add the elements' own phases)")
    mu_vec, *_ = np.linalg.lstsq(A, b, rcond=None)
    mu = {el: float(v) for el, v in zip(elements, mu_vec)}
    for p in points:
        if all(el in mu for el in _symbols(p.formula)):
            p.predicted = float(p.energy_per_atom - p.fractions(elements) @ mu_vec)
    return mu


def cross_validate(points: list[CalibrationPoint]) -> None:
    """Set each compound's `cv_predicted`: from a fit on every other point (held-out ones included).

    A compound whose removal leaves a reference undetermined keeps nan. Roles are left as they were.
    """
    for p in points:
        if len(_symbols(p.formula)) < 2:
            continue
        rest = [CalibrationPoint(q.formula, "fit" if q is not p else "holdout", q.n_atoms, q.energy_per_atom,
                                 q.target) for q in points]
        try:
            fit_references(rest)
        except DataError:
            continue
        p.cv_predicted = next(q.predicted for q, orig in zip(rest, points) if orig is p)


# ---------------------------------------------------------------- building and caching


def _targets(table, cset: CalibrationSet) -> tuple[list[tuple[dict, float]], list[dict]]:
    """(compound spec, data formation energy) for compounds the data has, and the skipped ones."""
    usable, skipped = [], []
    for item in cset.compounds:
        comp = Composition(str(item["formula"]))
        missing = [str(el) for el in comp.elements if not table.has_element(str(el))]
        if missing:
            skipped.append({"formula": comp.reduced_formula, "reason": f"the data has no {missing[0]}"})
            continue
        row = table.row_of(comp.reduced_formula)
        if row is None:
            skipped.append({"formula": comp.reduced_formula, "reason": "not in the data"})
            continue
        usable.append((item, float(table.energies[row])))
    return usable, skipped


def calibrate(calc, info, table, cset: CalibrationSet | None = None, *, fmax: float = CALIBRATION_FMAX,
              steps: int = CALIBRATION_STEPS, optimizer: str | None = None, progress=None) -> Calibration:
    """Relax every build of the calibration set with `calc` and fit the references (see module doc).

    progress: called with (done, total, formula) after each build, or None.
    A build the calculator fails on (an element it does not know) is skipped with its reason.
    """
    from screening.calc.relax import DEFAULT_OPTIMIZER, relax
    from screening.calc.structures import build

    optimizer = optimizer or DEFAULT_OPTIMIZER
    cset = cset or load_calibration_set()
    start = time.perf_counter()
    usable, skipped = _targets(table, cset)
    total = sum(len(item["builds"]) for item, _ in usable)
    done = 0
    points = []
    for item, target in usable:
        formula = Composition(str(item["formula"])).reduced_formula
        best, reasons, seconds = None, [], 0.0
        for k, spec in enumerate(item["builds"]):
            try:
                atoms = build(spec)
                result = relax(atoms, calc, fmax=fmax, steps=steps, optimizer=optimizer, label=formula)
            except InputError as exc:
                reasons.append(str(exc))
                result = None
            done += 1
            if progress is not None:
                progress(done, total, formula)
            if result is None:
                continue
            seconds += result.seconds
            if best is None or result.energy_per_atom < best[1].energy_per_atom:
                best = (k, result)
        if best is None:
            skipped.append({"formula": formula, "reason": reasons[0] if reasons else "no build"})
            continue
        k, result = best
        points.append(CalibrationPoint(formula, "fit", len(result.atoms), result.energy_per_atom, target,
                                       build=k, converged=result.converged, steps=result.steps,
                                       seconds=seconds))
    if not points:
        reason = skipped[0]["reason"] if skipped else "empty set"
        raise InputError(f"the {info.name} calibration has no usable compound (e.g. {reason})")
    split_holdout(points, cset.holdout_fraction, cset.seed)
    cross_validate(points)
    fit_references(points)  # without the held-out compounds: their errors are errors on unseen compounds
    for p in points:
        p.split_predicted = p.predicted
    mu = fit_references(points, all_points=True)  # the references used
    return Calibration(calculator=info.as_dict(),
                       data={"path": table.source.path, "sha256": _data_sha(table)},
                       calibration_set={"path": cset.path, "sha256": cset.sha256},
                       relaxation={"fmax": fmax, "steps": steps, "optimizer": optimizer},
                       mu=mu, points=points, skipped=skipped, seconds=time.perf_counter() - start,
                       created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))


def _data_sha(table) -> str:
    extra = table.source.extra or {}
    return str(extra.get("base_sha256") or table.source.sha256)


def cache_path(info, table, cset: CalibrationSet, fmax: float = CALIBRATION_FMAX,
               steps: int = CALIBRATION_STEPS, optimizer: str | None = None) -> Path:
    from screening.calc.relax import DEFAULT_OPTIMIZER

    key = json.dumps({"format": CALIBRATION_FORMAT, "calculator": info.key, "data": _data_sha(table),
                      "set": cset.sha256, "fmax": fmax, "steps": steps,
                      "optimizer": optimizer or DEFAULT_OPTIMIZER}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return cache_dir() / "calibration" / f"{info.slug}-{digest}.json"


def read_cached(path: Path) -> Calibration | None:
    """The cached calibration, or None if absent or unreadable (a bad cache is rebuilt, never trusted)."""
    try:
        raw = loads_json(read_bytes(path, "calibration", limit=LIMITS.max_config_bytes), f"calibration {path}")
        if raw.get("format") != CALIBRATION_FORMAT:
            return None
        cal = Calibration.from_dict(raw)
        if not cal.mu or not all(math.isfinite(v) for v in cal.mu.values()):
            return None
        return cal
    except Exception:
        return None


def get_calibration(calc, info, table, cset: CalibrationSet | None = None, *, recalibrate: bool = False,
                    progress=None, announce: bool = True) -> tuple[Calibration, bool, Path]:
    """(calibration, whether it was stored, its file): cached or shipped with the package, else built (and
    stored in the cache); a stored one is never rebuilt unless `recalibrate`."""
    cset = cset or load_calibration_set()
    path = cache_path(info, table, cset)
    if not recalibrate:
        for stored in (path, SHIPPED_DIR / path.name):
            cal = read_cached(stored)
            if cal is not None:
                return cal, True, stored
    if announce:
        n = sum(len(item["builds"]) for item in cset.compounds)
        print(f"screening: calibrating {info.name} on {n} structures of known compounds (once per "
              f"calculator and data set; a few minutes on a CPU) -> {path}", file=sys.stderr, flush=True)
    cal = calibrate(calc, info, table, cset, progress=progress)
    try:
        atomic_write_bytes(path, json.dumps(cal.as_dict(), indent=1, allow_nan=False).encode())
    except (OSError, ValueError):
        pass  # an unwritable cache folder only costs time
    return cal, False, path
