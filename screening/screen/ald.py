"""ALD evidence: is there a reported atomic-layer-deposition process for a candidate's chemistry?

The list (`ald_materials.csv`, Atomic Limits ALD database names) holds exact formulas (`Al2O3`), composition
families with variable amounts x, y, z (`LiNbxOy`, `LiPxOyNz`), dopants (`W:Al2O3`, `In2O3:H`), several
films (`Al2O3/SiO2`, `WO3-SiO2`) and organic-inorganic hybrids (`Ce-TPA`, `MoS-thiolate`). Each name is
parsed into films with their elements and anion class (the class `screen.candidates.anion_class` gives:
by the most electronegative element). A candidate's evidence is
- `reported`: its own composition, or its composition family (the same elements: LiNbxOy for Li3NbO4), is
  a film of the list;
- `components`: every cation of it appears in a reported film of the same anion class (a process exists
  for each precursor chemistry);
- `none` otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pymatgen.core import Composition, Element

from screening.errors import DataError, InputError
from screening.screen.candidates import anion_class

_SYMBOLS = frozenset(el.symbol for el in Element)
_FAMILY_TOKEN = re.compile(r"([A-Z][a-z]?)(\d*(?:\.\d+)?)([xyz]?)")
_HYBRID_ORGANIC = ("C", "H", "O")  # what an organic ligand adds to a hybrid film


@dataclass(frozen=True)
class Film:
    """One film of the ALD list: its elements, anion class, exact composition if the name gives one."""

    name: str
    elements: frozenset[str]
    anion_class: str
    composition: Composition | None = None  # None for a family (x, y, z) or a hybrid
    dopant: str | None = None
    hybrid: bool = False


def _split_symbols(text: str) -> list[tuple[str, str, str]] | None:
    """(element, number, variable) tokens of a family name such as LiNbxOy or VInxS3y; None if it is not
    one. A two-letter symbol is taken when it is an element (Dy, Nb); otherwise one letter (Cx is C with
    amount x)."""
    tokens = []
    pos = 0
    while pos < len(text):
        if not text[pos].isupper():
            return None
        two = text[pos:pos + 2]
        if len(two) == 2 and two[1].islower() and two in _SYMBOLS:
            symbol, pos = two, pos + 2
        elif text[pos] in _SYMBOLS:
            symbol, pos = text[pos], pos + 1
        else:
            return None
        match = re.match(r"(\d*(?:\.\d+)?)([xyz]?)", text[pos:])
        number, variable = match.group(1), match.group(2)
        pos += match.end()
        tokens.append((symbol, number, variable))
    return tokens or None


def parse_film(part: str) -> Film | None:
    """A film from one part of a name (no separators); None if the part is not a formula (a ligand)."""
    part = part.strip()
    if not part:
        return None
    tokens = _split_symbols(part)
    if tokens is None or not any(variable for _, _, variable in tokens):
        try:
            comp = Composition(part)
        except Exception:
            return None
        if comp.num_atoms > 0 and all(str(el) in _SYMBOLS for el in comp.elements):
            return Film(part, frozenset(str(el) for el in comp.elements), anion_class(comp), comp)
        return None
    # a family: the class follows from its elements (amounts are irrelevant to the most electronegative)
    elements = frozenset(symbol for symbol, _, _ in tokens)
    probe = Composition({symbol: 1 for symbol in elements})
    return Film(part, elements, anion_class(probe), None)


def parse_ald_name(name: str) -> list[Film]:
    """Every film a database name stands for. Raises ValueError if no part of it is a formula."""
    name = name.strip()
    dopant = None
    if ":" in name:
        left, _, right = name.partition(":")
        # the dopant is the single element on one side (W:Al2O3, In2O3:H, CaS:Eu)
        if left in _SYMBOLS and right not in _SYMBOLS:
            dopant, name = left, right
        elif right in _SYMBOLS:
            dopant, name = right, left
        else:
            raise ValueError(f"cannot tell host from dopant in {name!r}")
    parts = re.split(r"[/-]", name)
    films = [parse_film(part) for part in parts]
    ligands = [part for part, film in zip(parts, films) if film is None]
    films = [film for film in films if film is not None]
    if not films:
        raise ValueError(f"no formula in {name!r}")
    if ligands:  # an organic-inorganic hybrid (Ce-TPA, MoS-thiolate): metal part plus C, H, O
        films = [Film(f"{film.name}-{'-'.join(ligands)}", film.elements | frozenset(_HYBRID_ORGANIC), "hybrid",
                      None, dopant, True) for film in films]
    elif dopant:
        films = [Film(film.name, film.elements | {dopant}, film.anion_class, film.composition, dopant)
                 for film in films]
    return films


class AldList:
    """The parsed ALD list and the evidence rule (see the module docstring)."""

    def __init__(self, films: list[Film], path: Path | None, sha256: str | None, skipped: list[str]):
        self.films = films
        self.path = path
        self.sha256 = sha256
        self.skipped = skipped
        self._exact = {film.composition.reduced_formula for film in films if film.composition is not None}
        self._families = {film.elements for film in films if not film.hybrid}
        self._cations_by_class: dict[str, set[str]] = {}
        for film in films:
            if film.hybrid:
                continue
            anion = _anion_element(film)
            self._cations_by_class.setdefault(film.anion_class, set()).update(
                el for el in film.elements if el != anion and el != film.dopant)

    def evidence(self, comp: Composition) -> tuple[str, str]:
        """(`reported` | `components` | `none`, the reason in words)."""
        comp = Composition(comp)
        elements = frozenset(str(el) for el in comp.elements)
        if comp.reduced_formula in self._exact:
            return "reported", f"{comp.reduced_formula} is in the ALD list"
        if elements in self._families:
            family = next(f.name for f in self.films if f.elements == elements and not f.hybrid)
            return "reported", f"its composition family {family} is in the ALD list"
        cls = anion_class(comp)
        anion = max(comp.elements, key=lambda el: (el.X if el.X == el.X else 0.0, el.Z))
        cations = sorted(elements - {str(anion)}) if cls not in ("element", "intermetallic") else sorted(elements)
        known = self._cations_by_class.get(cls, set())
        missing = [el for el in cations if el not in known]
        if cations and not missing:
            return "components", f"every cation ({', '.join(cations)}) is in a reported {cls} film"
        return "none", (f"no reported {cls} film with {', '.join(missing)}" if missing
                        else "no reported film of its chemistry")

    def provenance(self) -> dict:
        return {"file": str(self.path) if self.path else None, "sha256": self.sha256,
                "films": len(self.films), "unparsed_names": self.skipped}


def _anion_element(film: Film) -> str | None:
    if film.anion_class in ("element", "intermetallic", "hybrid"):
        return None
    return max(film.elements, key=lambda el: (Element(el).X if Element(el).X == Element(el).X else 0.0,
                                                Element(el).Z))


def load_ald_list(path: str | Path | None = None) -> AldList | None:
    """The parsed ALD list (default beside the energy file); None if the file is absent."""
    import hashlib

    from screening.data.properties import ALD_FILE, data_dir, read_csv_rows
    from screening.safe_io import read_bytes

    ald_path = Path(path) if path else data_dir() / ALD_FILE
    if not ald_path.is_file():
        if path:
            raise InputError(f"ALD list not found: {ald_path}")
        return None
    films: list[Film] = []
    skipped: list[str] = []
    for lineno, record in read_csv_rows(ald_path, ("material",)):
        name = record[0]
        if len(name) > 100:
            raise DataError(f"corrupt ALD list {ald_path}: line {lineno} is not a material name")
        try:
            films.extend(parse_ald_name(name))
        except ValueError:
            skipped.append(name)
    if not films:
        raise DataError(f"ALD list {ald_path} holds no material names")
    sha = hashlib.sha256(read_bytes(ald_path, "ALD list", limit=16 << 20)).hexdigest()
    return AldList(films, ald_path, sha, skipped)
