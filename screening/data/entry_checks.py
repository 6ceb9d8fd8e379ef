"""Checks shared by every reader of entry files (users' entries, --entries JSON): no code, bounded values.

Entry JSON is parsed with the bounds of screening.safe_io.loads_json (duplicate keys, Infinity, huge
integers and deep nesting are refused) except that NaN is accepted where pymatgen itself writes it, as
the value of an "...uncertainty" key (EnergyAdjustment.uncertainty defaults to NaN), and nowhere else;
every "@module"/"@class" is checked against safe_io's allow-list before MontyDecoder sees it (nothing a
file names is imported). Energies and compositions are then bounded (see the limits
below); each refusal is one line naming the file and the entry.
"""

from __future__ import annotations

import json
import math
from numbers import Real

from pymatgen.core import Composition, Element

from screening import safe_io
from screening.errors import DataError, InputError

# Formation energies, eV/atom: the range `--energy` accepts (no known compound lies outside it).
FORMATION_RANGE = (-20.0, 10.0)
# Absolute (total) DFT energies, eV/atom, before corrections: VASP PAW energies lie within about
# -15..0 eV/atom, so anything outside this wide range is a broken or hostile file.
ABSOLUTE_RANGE = (-100.0, 10.0)
MAX_ATOMS = 100_000  # atoms of one entry's cell
MIN_AMOUNT = 1e-6  # smallest amount of an element in an entry's composition


def bytes_to_text(data: bytes, what: str) -> str:
    """UTF-8 (BOM or not), UTF-16/32 with a BOM, or UTF-16 without one (told from its zero bytes)."""
    if len(data) >= 2 and not data.startswith((b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf")):
        if data[0] == 0 and data[1] != 0:
            return _decode(data, "utf-16-be", what)
        if data[1] == 0 and data[0] != 0:
            return _decode(data, "utf-16-le", what)
    return safe_io.decode_text(data, what)


def _decode(data: bytes, codec: str, what: str) -> str:
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} is not {codec.upper()} text (byte {exc.start})") from None


def loads_entry_json(text: str, what: str) -> object:
    """JSON as safe_io.loads_json parses it, but NaN allowed as the value of "...uncertainty" keys."""
    def pairs(items):
        seen = {}
        for key, value in items:
            if key in seen:
                raise InputError(f"{what}: the key {safe_io.quote(key)} appears twice in one object")
            seen[key] = value
        return seen

    def integer(digits: str) -> int:
        n = len(digits.lstrip("-"))
        if n > safe_io.LIMITS.max_int_digits:
            raise InputError(f"{what}: an integer of {n} digits (more than {safe_io.LIMITS.max_int_digits})")
        return int(digits)

    def constant(name: str) -> float:
        if name != "NaN":
            raise InputError(f"{what}: {name} is not a number JSON allows")
        return math.nan

    try:
        obj = json.loads(text, object_pairs_hook=pairs, parse_int=integer, parse_constant=constant)
    except RecursionError:
        raise InputError(f"{what} is nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{what} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except ValueError as exc:
        raise InputError(f"{what} is not valid JSON: {safe_io.quote(str(exc), 120)}") from None
    safe_io.check_depth(obj, what, safe_io.LIMITS.max_json_depth)
    _check_numbers(obj, what)
    return obj


def _check_numbers(obj, what: str) -> None:
    """Refuse NaN except under "...uncertainty" keys, and floats out of range (1e999 parses as inf)."""
    stack = [(obj, "")]
    while stack:
        node, key = stack.pop()
        if isinstance(node, float) and not math.isfinite(node):
            if math.isnan(node) and key.endswith("uncertainty"):
                continue
            where = f" (key {safe_io.quote(key, 40)})" if key else ""
            name = "NaN (not a number)" if math.isnan(node) else "a number out of the floating-point range"
            raise InputError(f"{what}: {name}{where} where a number is needed")
        if isinstance(node, dict):
            stack.extend((value, str(k)) for k, value in node.items())
        elif isinstance(node, list):
            stack.extend((value, key) for value in node)


def decode_entries(data: bytes, what: str) -> list:
    """The pymatgen objects of an entry JSON document (a list, one object, or {"entries": [...]})."""
    raw = loads_entry_json(bytes_to_text(data, what), what)
    if isinstance(raw, dict) and "entries" in raw and "@class" not in raw and "@module" not in raw:
        raw = raw["entries"]
    items = raw if isinstance(raw, list) else [raw]
    safe_io.check_monty_classes(items, what)  # first: a refused class is named as such
    for k, item in enumerate(items):
        check_entry_dict(item, f"{what} item {k}" if len(items) > 1 else what)
    objects = safe_io.decode_monty(items, what)
    return list(objects)


def check_entry_dict(item, label: str) -> None:
    """Refuse, before decoding, an entry dict whose energy or composition amounts are not plain numbers."""
    if not isinstance(item, dict):
        return  # refused later as "not a pymatgen entry", with its type
    if "energy" in item and not _is_number(item["energy"]):
        raise InputError(f"{label}: the energy must be a number, not {safe_io.quote(item['energy'], 40)}")
    comp = item.get("composition")
    if isinstance(comp, dict):
        for key, amount in comp.items():
            if not _is_number(amount):
                raise InputError(f"{label}: the amount of {safe_io.quote(key, 20)} in its composition must "
                                 f"be a number, not {safe_io.quote(amount, 40)}")
            if not math.isfinite(float(amount)) or float(amount) <= 0:
                raise InputError(f"{label}: the amount of {safe_io.quote(key, 20)} in its composition must "
                                 f"be positive and finite, not {float(amount)!r}")


def _is_number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def element_composition(comp, label: str) -> Composition:
    """Element amounts of an entry's composition (species folded into elements), bounded."""
    try:
        elements: dict[str, float] = {}
        for sp, amount in comp.items():
            element = sp if isinstance(sp, Element) else getattr(sp, "element", None)
            if not isinstance(element, Element):
                raise ValueError(f"{sp} is not an element")
            elements[element.symbol] = elements.get(element.symbol, 0.0) + float(amount)
    except Exception as exc:
        raise DataError(f"{label}: unusable composition: {safe_io.quote(str(exc), 100)}") from None
    if not elements or any(not math.isfinite(a) or a <= 0 for a in elements.values()):
        raise DataError(f"{label}: the composition must have positive, finite amounts")
    total = sum(elements.values())
    if total > MAX_ATOMS:
        raise InputError(f"{label}: {total:g} atoms in one cell, more than {MAX_ATOMS}")
    small = min(elements, key=elements.get)
    if elements[small] < MIN_AMOUNT:
        raise InputError(f"{label}: {elements[small]:g} {small} in its composition is below {MIN_AMOUNT:g} "
                         "(round-off, not a composition)")
    return Composition(elements)


def check_energy(per_atom: float, label: str, kind: str = "formation") -> float:
    """`per_atom` (eV/atom) if finite and within the range of its kind ("formation" or "absolute")."""
    low, high = FORMATION_RANGE if kind == "formation" else ABSOLUTE_RANGE
    name = "formation energy" if kind == "formation" else "total energy (uncorrected)"
    if not math.isfinite(per_atom):
        raise InputError(f"{label} has a non-finite {name}")
    if not low <= per_atom <= high:
        raise InputError(f"{label}: {name} {per_atom:.6g} eV/atom is outside {low:g}..{high:g} eV/atom")
    return per_atom
