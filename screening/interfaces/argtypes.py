"""Command-line value checkers: a bad number is one clear argparse error naming the option's range."""

from __future__ import annotations

import argparse
import math


def bounded_float(what: str, low: float, high: float, unit: str = ""):
    """A float type for argparse: finite and within [low, high]."""
    suffix = f" {unit}" if unit else ""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what} {value:g}{suffix} is outside {low:g}..{high:g}{suffix}")
        return value

    return parse


def bounded_int(what: str, low: int, high: int):
    """An int type for argparse within [low, high]."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what} must be {low}..{high}, got {value}")
        return value

    return parse
