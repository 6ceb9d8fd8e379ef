"""Compare results with floats inside: numbers within a tolerance, everything else exactly."""

from __future__ import annotations

import pytest


def assert_close(got, want, atol: float = 1e-6, where: str = "result") -> None:
    """Nested dicts/lists equal in structure and in every non-number; numbers within `atol`."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and sorted(got) == sorted(want), where
        for key in want:
            assert_close(got[key], want[key], atol, f"{where}.{key}")
    elif isinstance(want, (list, tuple)):
        assert isinstance(got, (list, tuple)) and len(got) == len(want), where
        for i, (a, b) in enumerate(zip(got, want)):
            assert_close(a, b, atol, f"{where}[{i}]")
    elif isinstance(want, bool) or want is None or isinstance(want, str):
        assert got == want, where
    else:
        assert not isinstance(got, bool) and got == pytest.approx(want, rel=0, abs=atol), where
