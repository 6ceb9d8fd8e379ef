"""The two things a calibration needs beyond one reference per element: GGA vs GGA+U, and chemistry families.

GGA vs GGA+U. The data (Materials Project, legacy pre-2020 corrections) computes Co, Cr, Fe, Mn, Mo, Ni, V
and W with +U, and applies its +U energy correction, only in structures that contain O or F; in every
other structure (metal, sulfide, chloride, phosphide, ...) they are plain GGA. The two frames differ by
eV per atom of the metal, and a machine-learned potential trained on those calculations reproduces both.
So such an element has two references: ``"Fe(+U)"`` fitted on its oxides and fluorides (absorbing the
data's +U correction) and used for structures with O or F, and ``"Fe"`` fitted on its other compounds
and used for the rest. ``reference_keys`` maps a composition to those keys; ``resolve`` does it for a
fitted calibration, with a warning (never silently) when the structure is outside what the references
cover:
- a +U element whose reference of the right frame was not calibrated, the other one was (the energy then
  mixes the frames: off by up to eV per atom of that element);
- a +U element in a structure with O/F and another anion (N, S, Se, Te, Cl, Br, I): the data treats it
  with +U, but the +U references are fitted on oxides and fluorides only.
Only an element with no reference at all is refused (InputError).

Families. The error printed with an energy is that of the structure's chemistry family, from the
held-out compounds of that family (the calculator's errors differ by chemistry: sulfides are not
oxides). ``family(comp)`` is the first rule that matches:
    1 element                                   -> elements (never held out)
    O and (P or B)                              -> phosphates/borates
    O                                           -> oxides (incl. oxyhalides, carbonates, silicates, ...)
    S, Se or Te                                 -> sulfides (incl. thiophosphates, argyrodites Li6PS5Cl)
    F, Cl, Br or I                              -> halides
    N, C, P, B, As or H                         -> nitrides (nitrides, carbides, phosphides, borides)
    otherwise                                   -> intermetallics (incl. silicides, germanides, stannides)
A family's error is the largest held-out error of its compounds without a +U element (as the overall
error is the largest of all) when it has at least MIN_FAMILY_HOLDOUT of them held out; with fewer, the
overall largest held-out error is used and the output says so.

+U elements. A machine-learned potential's error on a 3d element depends on its oxidation and spin state
far more than on the family: SevenNet-0 is within 10 meV/atom on Co2+ oxides but 50-70 off on layered
Co3+ ones (NaCoO2, LiCoO2), and 90-180 off on Mn sulfides, while main-group oxides stay within ~10. So the
family errors are measured on the compounds without a +U element, and a structure holding a +U element
(either frame) reports the larger of its family's error and that reference's: the largest leave-one-out
error over the calibration compounds holding that reference key (at least MIN_ELEMENT_COMPOUNDS of them;
leave-one-out because an element has too few held-out compounds for a max).
"""

from __future__ import annotations

import math

import numpy as np
from pymatgen.core import Composition

from screening.errors import InputError

U_ELEMENTS = ("Co", "Cr", "Fe", "Mn", "Mo", "Ni", "V", "W")  # GGA+U in the data with O or F (legacy MP)
U_ANIONS = ("O", "F")
OTHER_ANIONS = ("N", "S", "Se", "Te", "Cl", "Br", "I")  # besides O/F: a mixed-anion structure
U_SUFFIX = "(+U)"

FAMILIES = ("oxides", "phosphates/borates", "sulfides", "halides", "nitrides", "intermetallics")
MIN_FAMILY_HOLDOUT = 3
MIN_ELEMENT_COMPOUNDS = 3
_SULFUR_GROUP = {"S", "Se", "Te"}
_HALOGENS = {"F", "Cl", "Br", "I"}
_PNICTIDE_LIKE = {"N", "C", "P", "B", "As", "H"}


def family(comp) -> str:
    """The chemistry family of a composition (see the module doc for the rule)."""
    symbols = {str(el) for el in Composition(comp).elements}
    if len(symbols) < 2:
        return "elements"
    if "O" in symbols:
        return "phosphates/borates" if symbols & {"P", "B"} else "oxides"
    if symbols & _SULFUR_GROUP:
        return "sulfides"
    if symbols & _HALOGENS:
        return "halides"
    if symbols & _PNICTIDE_LIKE:
        return "nitrides"
    return "intermetallics"


def is_u_frame(comp) -> bool:
    """Whether the data computes the +U elements of `comp` with +U (it contains O or F)."""
    symbols = {str(el) for el in Composition(comp).elements}
    return bool(symbols & set(U_ANIONS))


def reference_key(element: str, u_frame: bool) -> str:
    return f"{element}{U_SUFFIX}" if u_frame and element in U_ELEMENTS else element


def element_of(key: str) -> str:
    return key[:-len(U_SUFFIX)] if key.endswith(U_SUFFIX) else key


def reference_keys(comp) -> dict[str, float]:
    """{reference key: atomic fraction} of a composition in the data's frames (calibration compounds)."""
    comp = Composition(comp)
    u_frame = is_u_frame(comp)
    return {reference_key(str(el), u_frame): comp.get_atomic_fraction(el) for el in comp.elements}


def resolve(comp, mu: dict) -> tuple[dict[str, float], list[str], str | None]:
    """({reference key: atomic fraction}, elements without any reference, warning or None) for a structure.

    A +U element takes the reference of its frame (see the module doc); if only the other frame's was
    calibrated, that one is used and the warning says so. An element with neither is listed as missing.
    """
    comp = Composition(comp)
    u_frame = is_u_frame(comp)
    symbols = {str(el) for el in comp.elements}
    fractions, missing, notes = {}, [], []
    for el in comp.elements:
        sym = str(el)
        want = reference_key(sym, u_frame)
        key = want
        if want not in mu:
            other = reference_key(sym, not u_frame)
            if sym in U_ELEMENTS and other in mu:
                key = other
                frame, has = ("GGA+U", "with O/F") if u_frame else ("GGA", "without O/F")
                notes.append(f"{sym} is {frame} in the data in a structure {has} but the calibration has only its "
                             f"{'GGA' if u_frame else 'GGA+U'} reference ({other}): the energy mixes the two "
                             f"frames and can be off by up to eV per {sym} atom")
            else:
                missing.append(sym)
                continue
        fractions[key] = fractions.get(key, 0.0) + comp.get_atomic_fraction(el)
    mixed = sorted(symbols & set(OTHER_ANIONS))
    u_here = sorted(symbols & set(U_ELEMENTS))
    if u_frame and mixed and u_here:
        notes.append(f"mixed anions: {', '.join(u_here)} with O/F and {', '.join(mixed)} is GGA+U in the data, "
                     "but the +U references are calibrated on oxides and fluorides only (error not measured)")
    return fractions, missing, ("; ".join(notes) or None)


def check_covered(comp, mu: dict, message) -> tuple[dict[str, float], str | None]:
    """resolve(), raising InputError(message(comp, missing)) if an element has no reference at all."""
    fractions, missing, warning = resolve(comp, mu)
    if missing:
        raise InputError(message(Composition(comp), missing))
    return fractions, warning


# ---------------------------------------------------------------- errors per family


def _summary(err: list[float]) -> dict:
    if not err:
        return {"n": 0, "mae": None, "max": None}
    arr = np.abs(np.array(err))
    return {"n": int(len(arr)), "mae": float(arr.mean()), "max": float(arr.max())}


def has_u_element(comp) -> bool:
    """Whether `comp` holds a +U element (either frame): its error is that element's (module doc)."""
    return any(str(el) in U_ELEMENTS for el in Composition(comp).elements)


def family_stats(points) -> dict[str, dict]:
    """{family: {n_points, holdout: {n, mae, max}, cv: {n, mae, max}}} (eV/atom) over the compounds of the
    family without a +U element (those are measured per element: element_errors)."""
    out = {}
    for fam in FAMILIES:
        mine = [p for p in points if family(p.formula) == fam and not has_u_element(p.formula)]
        held = [p.split_predicted - p.target for p in mine if p.role == "holdout"]
        cv = [p.cv_predicted - p.target for p in mine if math.isfinite(p.cv_predicted)]
        out[fam] = {"n_points": len(mine), "holdout": _summary(held), "cv": _summary(cv)}
    return out


def family_error(points, overall: float, fam: str) -> tuple[float, str]:
    """(error in eV/atom, how it was obtained) for a structure of family `fam`."""
    stats = family_stats(points).get(fam)
    if stats is not None and stats["holdout"]["n"] >= MIN_FAMILY_HOLDOUT:
        return stats["holdout"]["max"], (f"largest held-out error of the {fam} ({stats['holdout']['n']} "
                                         "held-out compounds)")
    n = 0 if stats is None else stats["holdout"]["n"]
    what = "elements" if fam == "elements" else f"the {fam} family has {n} held-out compounds, fewer than " \
                                                 f"{MIN_FAMILY_HOLDOUT}"
    return overall, f"overall largest held-out error ({what})"


def element_errors(points) -> dict[str, dict]:
    """{reference key of a +U element: {n, max, worst}}: its compounds' largest leave-one-out error (eV/atom)."""
    out = {}
    for p in points:
        if not math.isfinite(p.cv_predicted):
            continue
        for key in reference_keys(p.formula):
            if element_of(key) not in U_ELEMENTS:
                continue
            err = abs(p.cv_predicted - p.target)
            cur = out.setdefault(key, {"n": 0, "max": 0.0, "worst": None})
            cur["n"] += 1
            if err > cur["max"] or cur["worst"] is None:
                cur["max"], cur["worst"] = float(err), p.formula
    return {key: v for key, v in sorted(out.items()) if v["n"] >= MIN_ELEMENT_COMPOUNDS}


def structure_error(points, overall: float, comp) -> tuple[str, float, str]:
    """(family, error in eV/atom, how it was obtained) for a structure: the larger of its family's error
    and the errors of the +U references it uses (module doc)."""
    fam = family(comp)
    family_err, basis = family_error(points, overall, fam)
    error = family_err
    per_key = element_errors(points)
    for key in sorted(reference_keys(comp)):
        stats = per_key.get(key)
        if stats is not None and stats["max"] > error:
            error, basis = stats["max"], (f"largest leave-one-out error of the {stats['n']} {key} compounds "
                                          f"({stats['worst']}), larger than the {fam}' {1000 * family_err:.0f} meV/atom")
    return fam, error, basis


def element_table_lines(points) -> list[str]:
    """Lines for `screening calibrate`: the +U references' leave-one-out errors (meV/atom)."""
    return [f"  {key:<8} {v['n']:>3} compounds, largest leave-one-out error {1000 * v['max']:4.0f} ({v['worst']})"
            for key, v in element_errors(points).items()]


def family_table_lines(points, overall: float) -> list[str]:
    """Lines for `screening calibrate`: held-out and leave-one-out errors per family (meV/atom)."""
    def mev(v):
        return "    -" if v is None else f"{1000 * v:5.0f}"

    lines = [f"  {'family':<19} {'points':>6} {'held out':>8} {'MAE':>5} {'max':>5} {'LOO n':>6} {'MAE':>5} "
             f"{'max':>5}   error reported (meV/atom)"]
    for fam, s in family_stats(points).items():
        err, basis = family_error(points, overall, fam)
        note = "" if basis.startswith("largest") else "  (overall: too few held out)"
        lines.append(f"  {fam:<19} {s['n_points']:>6} {s['holdout']['n']:>8} {mev(s['holdout']['mae'])} "
                     f"{mev(s['holdout']['max'])} {s['cv']['n']:>6} {mev(s['cv']['mae'])} {mev(s['cv']['max'])}"
                     f"   {1000 * err:.0f}{note}")
    return lines
