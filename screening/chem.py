"""Parsing and formatting of chemical formulas (pymatgen Composition underneath)."""

from __future__ import annotations

import math
import re

from pymatgen.core import Composition, Element

from screening.errors import InputError

# Elements the formula parser accepts: real elements only (pymatgen also knows dummy species).
_ELEMENT_SYMBOLS = frozenset(el.symbol for el in Element)
_SYMBOL_RE = re.compile(r"[A-Z][a-z]*")
_ALLOWED_RE = re.compile(r"[A-Za-z0-9.()\[\] ]+")
MAX_AMOUNT = 1e6  # atoms per element in a formula


def parse_formula(text: str) -> Composition:
    """Parse a user formula such as 'LiNi0.8Co0.1Mn0.1O2' or 'Li1.3Al0.3Ti1.7(PO4)3'.

    Raises InputError with a one-line reason for anything that is not a real composition.
    """
    if not isinstance(text, str) or not text.strip():
        raise InputError("empty formula")
    stripped = text.strip()
    if len(stripped) > 200:
        raise InputError(f"formula too long ({len(stripped)} characters): {stripped[:40]}...")
    if not stripped.isascii():
        raise InputError(f"cannot parse formula {stripped!r}: only ASCII element symbols and numbers")
    if not _ALLOWED_RE.fullmatch(stripped):
        bad = next(ch for ch in stripped if not _ALLOWED_RE.fullmatch(ch))
        raise InputError(f"cannot parse formula {stripped!r}: unexpected character {bad!r}")
    unknown = [s for s in _SYMBOL_RE.findall(stripped) if s not in _ELEMENT_SYMBOLS]
    if unknown:
        raise InputError(f"unknown element {unknown[0]!r} in formula {stripped!r}")
    try:
        comp = Composition(stripped)
    except Exception as exc:  # pymatgen raises ValueError/KeyError/others on bad strings
        raise InputError(f"cannot parse formula {stripped!r}") from exc
    amounts = list(comp.values())
    if not amounts or comp.num_atoms <= 0:
        raise InputError(f"formula {stripped!r} has no atoms")
    if any((not math.isfinite(a)) or a < 0 for a in amounts):
        raise InputError(f"formula {stripped!r} has a negative or non-finite amount")
    if any(a == 0 for a in amounts) or re.search(r"[A-Za-z\)\]]0+(\.0*)?(?![.\d])", stripped):
        raise InputError(f"formula {stripped!r} has an element with amount 0")
    if any(a > MAX_AMOUNT or 0 < a < 1e-6 for a in amounts) or not math.isfinite(sum(amounts)):
        raise InputError(f"formula {stripped!r} has an amount outside 1e-6..1e6")
    comp = Composition({el: amt for el, amt in comp.items() if amt > 0})
    if len(comp) == 0:
        raise InputError(f"formula {stripped!r} has no atoms")
    for el in comp.elements:
        if not isinstance(el, Element):
            raise InputError(f"unknown element {str(el)!r} in formula {stripped!r}")
    return comp

