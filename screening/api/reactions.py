"""Kink reactions as pymatgen Reaction objects, and reaction energies in kJ/mol of the reaction as written.

A kink at mixing ratio x (atom fraction of A) is `A + c B (+ Li) -> products (+ Li)`, normalised as the
text is (first reactant coefficient 1). The energy per mol of reaction as written is the energy per
atom times the atoms it counts (closed: every atom; open to Li: the non-Li atoms), times 96.485 kJ/mol
per eV, as the Materials Project Interface Reactions app (pymatgen InterfacialReactivity) shows it.
"""

from __future__ import annotations

from pymatgen.core import Composition

# kJ/mol per eV (CODATA 2018: e N_A / 1000); pymatgen's InterfacialReactivity uses 96.4853
EV_TO_KJ_PER_MOL = 96.48533212
BALANCE_TOL = 1e-6  # atoms: pymatgen's BalancedReaction tolerance


def reaction_sides(reactants: tuple[str, str], mixing_ratio: float, products: dict[str, float],
                   open_element: str | None) -> tuple[dict[str, float], dict[str, float]]:
    """({reactant: coefficient}, {product: coefficient}) of a kink, first reactant at 1 (as the text).

    `products` are the kink's products in that normalisation (they include the open element when it is
    released); the open element taken up from the reservoir is added to the reactants.
    """
    comp_a, comp_b = Composition(reactants[0]), Composition(reactants[1])
    fu_a = mixing_ratio / comp_a.num_atoms
    fu_b = (1.0 - mixing_ratio) / comp_b.num_atoms
    terms = [(reactants[0], fu_a), (reactants[1], fu_b)]
    scale = next((c for _, c in terms if c > 1e-12), 1.0)
    left = {name: c / scale for name, c in terms if c / scale > 1e-12}
    right = dict(products)
    if open_element is not None and open_element not in right:  # else released: already a product
        held = sum(Composition(n)[open_element] * c for n, c in left.items())
        made = sum(Composition(n)[open_element] * c for n, c in right.items())
        if made - held > 1e-7 * max(1.0, made):  # beyond the products' round-off (10 digits)
            left[open_element] = made - held
    return left, right


def make_reaction(left: dict[str, float], right: dict[str, float]):
    """A pymatgen Reaction with exactly these coefficients (pymatgen's own balancing when it agrees)."""
    from pymatgen.analysis.reaction_calculator import BalancedReaction, Reaction

    left_c = {Composition(n): c for n, c in left.items()}
    right_c = {Composition(n): c for n, c in right.items() if n not in left}
    try:
        rxn = Reaction(list(left_c), list(right_c))
        first = next(iter(left_c))
        rxn.normalize_to(first, left_c[first])
        if all(abs(rxn.get_coeff(c) + v) < BALANCE_TOL for c, v in left_c.items()) and \
                all(abs(rxn.get_coeff(c) - v) < BALANCE_TOL for c, v in right_c.items()):
            return rxn
    except Exception:  # pymatgen cannot balance these phases alone (several solutions): take ours
        pass
    rxn = Reaction.__new__(Reaction)
    BalancedReaction.__init__(rxn, left_c, right_c)  # raises ReactionError when unbalanced
    rxn._input_reactants, rxn._input_products = list(left_c), list(right_c)
    rxn._els = sorted({el for c in rxn._all_comp for el in c.elements})
    rxn._num_comp, rxn._num_elems = len(rxn._all_comp), len(rxn._els)
    return rxn


def atoms_counted(left: dict[str, float], open_element: str | None) -> float:
    """Atoms of the reaction as written that its per-atom energy counts (non-open ones when open)."""
    total = 0.0
    for name, coeff in left.items():
        comp = Composition(name)
        total += coeff * (comp.num_atoms - (comp[open_element] if open_element else 0.0))
    return total


def kj_per_mol(energy_per_atom: float, atoms: float) -> float:
    """kJ per mol of reaction as written from eV per atom and the atoms the reaction counts."""
    return energy_per_atom * atoms * EV_TO_KJ_PER_MOL
