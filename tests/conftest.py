"""Shared fixtures: the real snapshot (cached once per session) and pymatgen references."""

from __future__ import annotations

import functools
import os
import warnings

import pytest

from screening.data.snapshot import default_entries_path, load_entries


@pytest.fixture(scope="session")
def table():
    """The embedded MP snapshot as an EntryTable."""
    path = default_entries_path()
    if not path.is_file():
        pytest.fail(f"embedded snapshot not found at {path}: clone the repository beside shared/")
    return load_entries(path)


@functools.lru_cache(maxsize=None)
def _pymatgen_pd(names: tuple, energies: tuple):
    from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
    from pymatgen.core import Composition

    entries = [PDEntry(Composition(n), e * Composition(n).num_atoms) for n, e in zip(names, energies)]
    return PhaseDiagram(entries)


def pymatgen_pd(chemsys):
    """pymatgen PhaseDiagram on exactly the entries of a ChemSys (cached per system)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _pymatgen_pd(tuple(chemsys.names), tuple(float(e) for e in chemsys.energies))


@pytest.fixture(autouse=True, scope="session")
def _quiet_warnings():
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    yield


@pytest.fixture(autouse=True, scope="session")
def _light_monte_carlo():
    """In-process screens whose config leaves the Monte Carlo of the top rows at its defaults (top 50,
    200 draws) run a light one (top 5, 8 draws): it still runs in every such test, at a fraction of the
    cost. Tests of the Monte Carlo itself set their own; subprocess screens use demo.yaml's."""
    from screening.screen import config

    saved = dict(config.DEFAULT_MONTE_CARLO)
    config.DEFAULT_MONTE_CARLO.update(top=5, draws=8)
    yield
    config.DEFAULT_MONTE_CARLO.update(saved)
