"""Error model of formation energies (eV/atom): shared errors of fitted corrections plus one per composition.

A GGA/GGA+U formation energy carries
- correlated errors: each fitted correction (the oxide, sulfide, fluoride, ... anion corrections and
  each GGA+U metal's mixing correction) is one number shared by every entry that has it, so its
  error moves all of them together, in proportion to the atom fraction of that species (a correction
  of c eV per atom of the species adds c x_species eV per atom of the compound). Standard deviations:
  pymatgen's MP2020 compatibility file (the uncertainties of its fit, Wang et al., Sci. Rep. 11,
  15496 (2021)). The embedded data used the legacy (pre-2020) scheme, fitted the same way to the same
  kind of experimental data; MP2020's are the published errors of such a fit.
- an independent error per composition (default 0.024 eV/atom: Hautier et al., PRB 85, 155208
  (2012), the spread of GGA+U reaction energies between chemically similar compounds).
Elements are the references of formation energies: no error of their own.

Errors shared by both sides of a reaction cancel because every draw (and every covariance) uses
one value per correction for all entries of a system.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from pymatgen.core import Composition, Element

from screening.errors import InputError
from screening.thermo.error_defaults import CORRECTION_SCHEMES, DEFAULT_INDEPENDENT_ERROR

MAX_ERROR = 1.0  # eV/atom: larger is not an error estimate of a DFT formation energy
ANION_CANDIDATES = ("Br", "I", "Se", "Si", "Sb", "Te", "H", "N", "F", "Cl")
# pymatgen's composition-only oxide types (MaterialsProject2020Compatibility without a structure)
PEROXIDES = frozenset("Li2O2 Na2O2 K2O2 Cs2O2 Rb2O2 BeO2 MgO2 CaO2 SrO2 BaO2".split())
SUPEROXIDES = frozenset("LiO2 NaO2 KO2 RbO2 CsO2".split())
OZONIDES = frozenset("LiO3 NaO3 KO3 NaO5".split())
MAX_GUESS_SITES = 20  # pymatgen's bound on oxidation-state guessing (max_sites=-20)


@lru_cache(maxsize=1)
def mp2020_uncertainties() -> dict[str, float]:
    """{species label: standard deviation, eV per atom of that species} from pymatgen's MP2020 file.

    Labels: "anion:oxide", "anion:S", ..., "U:Mn" (one mixing correction per metal: the file gives
    it the same fitted value and error for oxides and fluorides).
    """
    import pymatgen.analysis.compatibility as compat
    from monty.serialization import loadfn

    table = loadfn(Path(compat.__file__).parent / "MP2020Compatibility.yaml")["Uncertainties"]
    out = {f"anion:{name}": float(sigma) for name, sigma in table["CompositionCorrections"].items()}
    for metals in table["GGAUMixingCorrections"].values():
        for metal, sigma in metals.items():
            out[f"U:{metal}"] = max(out.get(f"U:{metal}", 0.0), float(sigma))
    return out


@lru_cache(maxsize=200_000)
def correction_species(formula: str) -> tuple[tuple[str, float], ...]:
    """((species label, atom fraction), ...) of the corrections a compound carries, as
    MaterialsProject2020Compatibility assigns them from a composition alone: oxide type by formula;
    S always a sulfide unless O is present (then a sulfate or sulfite, which pymatgen's structure
    check leaves uncorrected); other anions when their first guessed oxidation state is negative, or,
    without a guess, when they are the most electronegative element; a GGA+U metal's mixing
    correction in oxides and fluorides (O or F the most electronegative element)."""
    comp = Composition(formula)
    if len(comp.elements) < 2:
        return ()
    fractions = {str(el): comp.get_atomic_fraction(el) for el in comp.elements}
    ordered = sorted(comp.elements, key=lambda el: el.X)
    most_negative = ordered[-1].symbol
    out: list[tuple[str, float]] = []
    if "S" in fractions and "O" not in fractions:
        out.append(("anion:S", fractions["S"]))
    if "O" in fractions:
        reduced = comp.reduced_formula
        kind = ("peroxide" if reduced in PEROXIDES else "superoxide" if reduced in SUPEROXIDES
                else "ozonide" if reduced in OZONIDES else "oxide")
        out.append((f"anion:{kind}", fractions["O"]))
    candidates = [a for a in ANION_CANDIDATES if a in fractions]
    guesses = None
    for anion in candidates:
        if anion == most_negative:
            out.append((f"anion:{anion}", fractions[anion]))
            continue
        if guesses is None:
            guesses = _first_oxidation_guess(comp)
        if guesses.get(anion, 0) < 0:
            out.append((f"anion:{anion}", fractions[anion]))
    if most_negative in ("O", "F"):
        for el in comp.elements:
            label = f"U:{el.symbol}"
            if label in mp2020_uncertainties():
                out.append((label, fractions[el.symbol]))
    return tuple(sorted(out))


@lru_cache(maxsize=200_000)
def _reduced(formula: str) -> tuple[str, int]:
    comp = Composition(formula)
    return comp.reduced_formula, len(comp.elements)


def _first_oxidation_guess(comp: Composition) -> dict[str, float]:
    try:
        guesses = comp.oxi_state_guesses(max_sites=-MAX_GUESS_SITES)
    except ValueError:
        guesses = ()
    return dict(guesses[0]) if guesses else {}


@dataclass(frozen=True)
class ErrorModel:
    """Standard deviations of formation energies (eV/atom).

    independent: per composition, for every compound without an error of its own;
    corrections: "mp2020" (shared errors of the fitted corrections) or "none";
    entry_errors: ((reduced formula, eV/atom), ...) replacing `independent` for those compositions
    (a user's own entry, an ML energy with its calibration error).
    """

    independent: float = DEFAULT_INDEPENDENT_ERROR
    corrections: str = "mp2020"
    entry_errors: tuple[tuple[str, float], ...] = ()

    def __post_init__(self):
        check_error("the independent error", self.independent)
        if self.corrections not in CORRECTION_SCHEMES:
            raise InputError(f"unknown correction error model {self.corrections!r}: choose "
                             + " or ".join(CORRECTION_SCHEMES))
        for formula, sigma in self.entry_errors:
            check_error(f"the error of {formula}", sigma)
        object.__setattr__(self, "_own", {Composition(f).reduced_formula: float(s)
                                          for f, s in self.entry_errors})

    @property
    def is_zero(self) -> bool:
        return (self.independent == 0 and all(s == 0 for _, s in self.entry_errors)
                and (self.corrections == "none" or all(v == 0 for v in mp2020_uncertainties().values())))

    def correction_sigmas(self) -> dict[str, float]:
        return {} if self.corrections == "none" else mp2020_uncertainties()

    def independent_error(self, formula: str) -> float:
        """eV/atom for this composition alone (0 for an element: the reference)."""
        reduced, n_elements = _reduced(formula)
        if n_elements < 2:
            return 0.0
        return self._own.get(reduced, self.independent)

    def design(self, formulas) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(species labels, content matrix [entry, species] of atom fractions, independent sigmas)."""
        formulas = list(formulas)
        sigmas = self.correction_sigmas()
        content = [dict(correction_species(f)) if sigmas else {} for f in formulas]
        labels = sorted({label for c in content for label in c if sigmas.get(label, 0.0) > 0})
        matrix = np.zeros((len(formulas), len(labels)))
        column = {label: j for j, label in enumerate(labels)}
        for i, c in enumerate(content):
            for label, fraction in c.items():
                if label in column:
                    matrix[i, column[label]] = fraction
        independent = np.array([self.independent_error(f) for f in formulas])
        return labels, matrix, independent

    def covariance(self, formulas) -> np.ndarray:
        """Covariance (eV/atom)^2 of the formation energies of `formulas`."""
        labels, matrix, independent = self.design(formulas)
        species = np.array([self.correction_sigmas()[label] for label in labels])
        return (matrix * species**2) @ matrix.T + np.diag(independent**2)

    def draws(self, formulas, count: int, rng: np.random.Generator) -> np.ndarray:
        """count x len(formulas) correlated energy errors (eV/atom): one value per correction per
        draw, shared by every formula, plus the independent parts."""
        labels, matrix, independent = self.design(formulas)
        species = np.array([self.correction_sigmas()[label] for label in labels])
        shared = rng.standard_normal((count, len(labels))) * species
        own = rng.standard_normal((count, len(independent))) * independent
        return shared @ matrix.T + own

    def as_dict(self) -> dict:
        return {"independent_error_eV_per_atom": self.independent,
                "independent_error_source": "Hautier et al., Phys. Rev. B 85, 155208 (2012)",
                "correction_errors": self.corrections,
                "correction_errors_source": ("pymatgen MP2020Compatibility.yaml Uncertainties "
                                             "(Wang et al., Sci. Rep. 11, 15496 (2021))"
                                             if self.corrections == "mp2020" else None),
                "entry_errors_eV_per_atom": dict(self.entry_errors)}


def check_error(what: str, value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a number of eV/atom, got {value!r}") from None
    if not np.isfinite(value) or value < 0:
        raise InputError(f"{what} must be a non-negative number of eV/atom, got {value:g}")
    if value > MAX_ERROR:
        raise InputError(f"{what} of {value:g} eV/atom is above {MAX_ERROR:g} eV/atom: not an error "
                         "estimate of a DFT formation energy")
    return value


def standard_deviation(model: ErrorModel, formula_of, gradient: dict[int, float] | None) -> float | None:
    """First-order standard deviation (units of the quantity) of a quantity with this gradient;
    formula_of maps a gradient key to the formula of its entry. None without a gradient."""
    if gradient is None:
        return None
    if not gradient:
        return 0.0
    keys = sorted(gradient)
    coefficients = np.array([gradient[k] for k in keys])
    covariance = model.covariance([formula_of(k) for k in keys])
    return float(np.sqrt(max(coefficients @ covariance @ coefficients, 0.0)))
