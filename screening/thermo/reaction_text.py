"""Balanced reactions written out with formula-unit coefficients."""

from __future__ import annotations

AMOUNT_DIGITS = 10  # significant digits kept in reported amounts


def clean_amount(value: float) -> float:
    """An amount without float round-off (0.5000000000001342 -> 0.5) and never -0.0."""
    return float(f"{float(value):.{AMOUNT_DIGITS}g}") + 0.0


def clean_amounts(amounts: dict[str, float]) -> dict[str, float]:
    """{phase: amount} with every amount cleaned, order kept."""
    return {name: clean_amount(amount) for name, amount in amounts.items()}


def format_coefficient(value: float) -> str:
    """'1' is omitted; otherwise up to 4 decimals with trailing zeros stripped."""
    if abs(value - 1.0) < 5e-5:
        return ""
    text = f"{value:.4g}" if value < 1e-3 else f"{value:.4f}".rstrip("0").rstrip(".")
    return text + " "


def format_side(terms: list[tuple[str, float]]) -> str:
    return " + ".join(f"{format_coefficient(c)}{name}" for name, c in terms if c > 1e-9)


def format_reaction(reactants: list[tuple[str, float]], products: list[tuple[str, float]]) -> str:
    """'a A + b B -> c C + d D' with coefficients in formula units."""
    left = format_side(reactants) or "nothing"
    right = format_side(products) or "nothing"
    return f"{left} -> {right}"


def normalise(reactants: list[tuple[str, float]], products: list[tuple[str, float]]):
    """Scale so the first reactant with a non-zero coefficient has coefficient 1."""
    scale = next((c for _, c in reactants if c > 1e-12), 1.0)
    return ([(n, c / scale) for n, c in reactants if c > 1e-12],
            [(n, c / scale) for n, c in products if c > 1e-12])
