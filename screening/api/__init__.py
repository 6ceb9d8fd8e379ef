"""The public Python API: `Explorer`, its result objects, shortcuts on a default Explorer, `load_run`.

    import screening as sc
    sc.stability("LiNbO3").e_above_hull          # eV/atom, embedded Materials Project snapshot
    sc.pair("LiCoO2", "Li3PS4").reaction         # a pymatgen Reaction

This package is the top layer: it imports the rest of screening, nothing below imports it.
"""

from __future__ import annotations

import threading

from screening.api.explorer import Explorer, as_material
from screening.api.results import (DecompositionResult, KinkResult, PairResult, StabilityResult,
                                   WindowResult)
from screening.api.runs import load_run
from screening.errors import DataError, InputError, ScreeningError

__all__ = ["Explorer", "StabilityResult", "WindowResult", "PairResult", "KinkResult", "DecompositionResult",
           "stability", "window", "pair", "decompose", "load_run", "default_explorer", "as_material",
           "InputError", "DataError", "ScreeningError"]

_DEFAULT: Explorer | None = None
_LOCK = threading.Lock()


def default_explorer() -> Explorer:
    """The Explorer of the embedded data ($SCREENING_ENTRIES if set), built on first use."""
    global _DEFAULT
    with _LOCK:
        if _DEFAULT is None:
            _DEFAULT = Explorer()
        return _DEFAULT


def stability(material, energy: float | None = None) -> StabilityResult:
    """Explorer().stability on the embedded data: energy above hull, decomposition energy (eV/atom)."""
    return default_explorer().stability(material, energy=energy)


def window(material, as_is: bool = False, energy: float | None = None) -> WindowResult:
    """Explorer().window on the embedded data: the electrochemical window (V vs Li/Li+)."""
    return default_explorer().window(material, as_is=as_is, energy=energy)


def pair(a, b, potential: float | None = None, *, own_energies: bool = False,
         mutual_only: bool = False) -> PairResult:
    """Explorer().pair on the embedded data: the interface reaction of a | b."""
    return default_explorer().pair(a, b, potential, own_energies=own_energies, mutual_only=mutual_only)


def decompose(material, potential=None, energy: float | None = None) -> DecompositionResult:
    """Explorer().decompose on the embedded data: decomposition open to Li at potential(s) V."""
    return default_explorer().decompose(material, potential, energy=energy)
