"""Parsing of chemical formulas (pymatgen Composition underneath) and of plain decimal numbers.

Adducts and hydrates are read as sums: `CuSO4*5H2O`, `CuSO4·5H2O`, `Li2O.5Al2O3` and `Li2O 5H2O` are
A + n B. A dot between two digits is a decimal point (`LiNi0.8Co0.1Mn0.1O2`, `Li0.5CoO2`,
`Li6.4La3Zr1.4Ta0.6O12`), except where it could as well be an adduct (`CuSO4.5H2O`: O4.5, or
CuSO4 + 5 H2O?): such a formula is refused with both readings spelled out, never guessed.
"""

from __future__ import annotations

import functools
import math
import re

from pymatgen.core import Composition, Element

from screening.errors import InputError

# Elements the formula parser accepts: real elements only (pymatgen also knows dummy species).
_ELEMENT_SYMBOLS = frozenset(el.symbol for el in Element)
_SYMBOL_RE = re.compile(r"[A-Z][a-z]*")
_ALLOWED_RE = re.compile(r"[A-Za-z0-9.()\[\] *]+")
MAX_AMOUNT = 1e6  # atoms per element in a formula, and the largest adduct multiplier
# The dots people type between the parts of an adduct (middle dot, bullet, dot operators); '*' and
# '.' (where it is not a decimal point) mean the same.
ADDUCT_DOTS = "\u00b7\u2022\u2219\u22c5\u30fb\u2027"
# Molecules that follow an adduct dot (hydrates, ammoniates, ...): with one of them after `N.M`,
# the dot may be an adduct dot, so the formula is ambiguous.
_ADDUCT_MOLECULES = ("H2O", "NH3", "CO2", "HF", "HCl", "HBr", "H2S", "H2O2", "CH3OH", "C2H5OH")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_MULTIPLIER = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)")
# N.M followed by a formula, N >= 1 and M without a leading zero: `4.5H2O` reads as O4.5 or 5 H2O
_AMBIGUOUS_DOT = re.compile(r"(?<![0-9.])[1-9][0-9]*\.([1-9][0-9]*)(?=[A-Z(\[])")


def parse_decimal(text: str) -> float:
    """A plain ASCII decimal number ('4.3', '-1.4', '1e-3'); ValueError for anything else, such as
    '1_0' or non-ASCII digits, which Python's float() would take."""
    if not isinstance(text, str) or not _PLAIN_NUMBER.fullmatch(text.strip()):
        raise ValueError(f"not a plain decimal number: {text!r}")
    return float(text.strip())


def parse_formula(text: str) -> Composition:
    """Parse a user formula such as 'LiNi0.8Co0.1Mn0.1O2', 'Li1.3Al0.3Ti1.7(PO4)3' or 'CuSO4*5H2O'.

    Raises InputError with a one-line reason for anything that is not a real composition.
    """
    if not isinstance(text, str) or not text.strip():
        raise InputError("empty formula")
    stripped = text.strip()
    if len(stripped) > 200:
        raise InputError(f"formula too long ({len(stripped)} characters): {stripped[:40]}...")
    for dot in ADDUCT_DOTS:
        stripped = stripped.replace(dot, "*")
    if not stripped.isascii():
        raise InputError(f"cannot parse formula {stripped!r}: only ASCII element symbols and numbers")
    if not _ALLOWED_RE.fullmatch(stripped):
        bad = next(ch for ch in stripped if not _ALLOWED_RE.fullmatch(ch))
        raise InputError(f"cannot parse formula {stripped!r}: unexpected character {bad!r}")
    unknown = [s for s in _SYMBOL_RE.findall(stripped) if s not in _ELEMENT_SYMBOLS]
    if unknown:
        raise InputError(f"unknown element {unknown[0]!r} in formula {stripped!r}")
    parts = _adduct_parts(stripped)
    if len(parts) == 1:
        comp = _parse_part(parts[0][1], stripped)
    else:
        comp = Composition()
        for multiplier, part in parts:
            comp += _parse_part(part, stripped) * multiplier
    return _checked(comp, stripped)


def _adduct_parts(text: str) -> list[tuple[float, str]]:
    """[(multiplier, formula)] of an adduct A*nB*mC (one part for a plain formula)."""
    if re.search(r"[0-9]\.[0-9]*\.", text):
        raise InputError(f"cannot parse formula {text!r}: a number with two dots; write an adduct with '*' "
                         "(CaSO4*0.5H2O)")
    text = re.sub(r" *\* *", "*", text)
    text = re.sub(r" +\.(?![0-9]) *| *(?<![0-9])\. +", ".", text)  # 'Li2O . 5Al2O3', not '0. 5'
    pieces, start = [], 0
    for i, ch in enumerate(text):
        if ch == "*" or (ch == "." and not _decimal_point(text, i)) or (ch == " " and _space_separates(text, i)):
            pieces.append(text[start:i])
            start = i + 1
    pieces.append(text[start:])
    if len(pieces) == 1:
        _refuse_ambiguous_dot(text)
        return [(1.0, text.replace(" ", ""))]
    parts = []
    for k, piece in enumerate(pieces):
        piece = piece.replace(" ", "")
        match = _MULTIPLIER.match(piece)
        multiplier = 1.0
        if match and k > 0:
            multiplier = float(match.group())
            piece = piece[match.end():]
            if not 0 < multiplier <= MAX_AMOUNT:
                raise InputError(f"formula {text!r}: an adduct multiplier must be above 0 and at most "
                                 f"{MAX_AMOUNT:g}, got {match.group()}")
        if not piece:
            raise InputError(f"formula {text!r} has an empty part: write an adduct as A*nB (CuSO4*5H2O)")
        _refuse_ambiguous_dot(piece, whole=text)
        parts.append((multiplier, piece))
    return parts


def _decimal_point(text: str, i: int) -> bool:
    """Whether the '.' at i sits between two digits (a decimal point) rather than after a symbol or a
    parenthesis, or before a letter (an adduct dot: Li2O.5Al2O3, Li2SO4.H2O)."""
    return 0 < i < len(text) - 1 and text[i - 1].isdigit() and text[i + 1].isdigit()


def _space_separates(text: str, i: int) -> bool:
    """The last space before a number starts a new part ('Li2O 5H2O'); other spaces only join symbols."""
    return bool(text[:i].strip()) and i + 1 < len(text) and (text[i + 1].isdigit() or text[i + 1] == ".")


def _refuse_ambiguous_dot(part: str, whole: str | None = None) -> None:
    """Refuse N.M B where B could be the molecule of an adduct (CuSO4.5H2O, Na2CO3.10H2O)."""
    whole = whole or part
    for match in _AMBIGUOUS_DOT.finditer(part):
        head, count = part[:match.start(1) - 1], match.group(1)
        tail = part[match.end(1):]
        if "." in tail:  # more decimals follow (Li6.4La3Zr1.4Ta0.6O12): a non-stoichiometric formula
            continue
        try:
            a, b = Composition(head), Composition(tail)
        except Exception:  # either side is no formula on its own: only the decimal reading exists
            continue
        molecule = any(b.almost_equals(m) for m in _adduct_molecules())
        if not (molecule or set(a.elements) & set(b.elements)):
            continue
        try:
            decimal = _formula_text(Composition(part))
        except Exception:  # not a formula either way: _parse_part says so
            return
        adduct = _formula_text(a + b * int(count))
        raise InputError(f"formula {whole!r} is ambiguous: {head}*{count}{tail} (an adduct, {adduct}) or a "
                         f"decimal amount (giving {decimal}); write {head}*{count}{tail} or "
                         f"{head}\u00b7{count}{tail} for the adduct, or {decimal} for the decimal")


def _formula_text(comp: Composition) -> str:
    """The formula with its fractional amounts last (CuSH2O5.5), which no adduct reading can take."""
    items = sorted(comp.items(), key=lambda item: item[1] != int(item[1]))
    return "".join(str(el) + ("" if amt == 1 else f"{amt:g}") for el, amt in items)


@functools.lru_cache(maxsize=1)
def _adduct_molecules() -> tuple[Composition, ...]:
    return tuple(Composition(m) for m in _ADDUCT_MOLECULES)


def _parse_part(part: str, whole: str) -> Composition:
    """One formula without adduct dots."""
    try:
        comp = Composition(part)
    except Exception as exc:  # pymatgen raises ValueError/KeyError/others on bad strings
        raise InputError(f"cannot parse formula {whole!r}") from exc
    amounts = list(comp.values())
    if not amounts or comp.num_atoms <= 0:
        raise InputError(f"formula {whole!r} has no atoms")
    if any((not math.isfinite(a)) or a < 0 for a in amounts):
        raise InputError(f"formula {whole!r} has a negative or non-finite amount")
    if any(a == 0 for a in amounts) or re.search(r"[A-Za-z\)\]]0+(\.0*)?(?![.\d])", part):
        raise InputError(f"formula {whole!r} has an element with amount 0")
    return comp


def _checked(comp: Composition, whole: str) -> Composition:
    amounts = list(comp.values())
    if any(a > MAX_AMOUNT or 0 < a < 1e-6 for a in amounts) or not math.isfinite(sum(amounts)):
        raise InputError(f"formula {whole!r} has an amount outside 1e-6..1e6")
    comp = Composition({el: amt for el, amt in comp.items() if amt > 0})
    if len(comp) == 0:
        raise InputError(f"formula {whole!r} has no atoms")
    for el in comp.elements:
        if not isinstance(el, Element):
            raise InputError(f"unknown element {str(el)!r} in formula {whole!r}")
    return comp
