"""Command-line value checkers: a bad number is one clear argparse error naming the option's range.

Numbers are plain ASCII decimals ('4.3', '-1.4', '1e-3'): Python's float() and int() would also take
'1_0' (as 10) and non-ASCII digits such as '٣' (as 3), which nobody means on a command line. A value may
carry its unit ('4.3V', '-1.4eV', '-1.4 eV/atom') when the option names one.
"""

from __future__ import annotations

import argparse
import math
import re

from screening.chem import parse_decimal
from screening.safe_io import quote

_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")


def bounded_float(what: str, low: float, high: float, unit: str = "", units: tuple[str, ...] = ()):
    """A float type for argparse: a plain decimal, finite and within [low, high], optionally followed
    by one of `units` (case-insensitive, e.g. ("V",) or ("eV/atom", "eV"))."""
    suffix = f" {unit}" if unit else ""

    def parse(text: str) -> float:
        number = _strip_unit(text, units)
        try:
            value = parse_decimal(number)
        except ValueError:
            hint = f" (plain decimals only{', optionally with ' + ' or '.join(units) if units else ''})"
            raise argparse.ArgumentTypeError(f"not a number: {quote(text, 40)}{hint}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"not a finite number: {quote(text, 40)}")
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what} {value:g}{suffix} is outside {low:g}..{high:g}{suffix}")
        return value

    return parse


def _strip_unit(text: str, units: tuple[str, ...]) -> str:
    """The number part of '4.3V' / '-1.4 eV/atom' (the longest matching unit is removed)."""
    if not isinstance(text, str):
        return text
    stripped = text.strip()
    for unit in sorted(units, key=len, reverse=True):
        if len(stripped) > len(unit) and stripped[-len(unit):].lower() == unit.lower():
            return stripped[:-len(unit)].rstrip(" ")
    return stripped


def bounded_int(what: str, low: int, high: int):
    """An int type for argparse within [low, high] (ASCII digits only)."""

    def parse(text: str) -> int:
        if not isinstance(text, str) or not _INTEGER.fullmatch(text.strip()):
            raise argparse.ArgumentTypeError(f"not a whole number: {quote(text, 40)}")
        value = int(text.strip())
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what} must be {low}..{high}, got {value}")
        return value

    return parse


def add_uncertainty_arguments(parser: argparse.ArgumentParser) -> None:
    """--uncertainty and the error model's options (used by stability, window, pair, decompose)."""
    from screening.thermo.error_defaults import (CORRECTION_SCHEMES, DEFAULT_DRAWS,
                                                 DEFAULT_INDEPENDENT_ERROR, METHODS)

    group = parser.add_argument_group("uncertainty of the DFT energies")
    group.add_argument("--uncertainty", choices=METHODS, default=None,
                       help="propagate the energies' errors: first-order (from the decompositions) or "
                            f"monte-carlo (correlated draws, default {DEFAULT_DRAWS})")
    group.add_argument("--draws", type=int, default=DEFAULT_DRAWS, metavar="N", help="Monte Carlo draws")
    group.add_argument("--seed", type=int, default=0, help="Monte Carlo seed (same seed, same answer)")
    group.add_argument("--independent-error", type=float, default=DEFAULT_INDEPENDENT_ERROR,
                       metavar="EV_PER_ATOM",
                       help=f"error of each composition's energy (default {DEFAULT_INDEPENDENT_ERROR}, "
                            "Hautier et al. 2012)")
    group.add_argument("--correction-errors", choices=CORRECTION_SCHEMES, default="mp2020",
                       help="shared errors of the fitted anion and GGA+U corrections (default mp2020)")
    group.add_argument("--entry-error", action="append", default=[], metavar="FORMULA=EV_PER_ATOM",
                       help="an error of one composition's energy (repeatable), e.g. an ML energy's")


