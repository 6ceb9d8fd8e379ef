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


def shipped_calibration(prefix: str):
    """(calibration, path) of the one calibration shipped with the package as `prefix`-*.json."""
    from screening.calc.calibration import SHIPPED_DIR, read_cached

    files = sorted(SHIPPED_DIR.glob(f"{prefix}-*.json"))
    assert len(files) == 1, f"one shipped {prefix} calibration expected, found {files}"
    cal = read_cached(files[0])
    assert cal is not None, f"{files[0]} does not read as a calibration of the current format"
    return cal, files[0]


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


# The longest files first (by their time on this 2-core machine, 2026-12-07), so that with two pytest-xdist
# workers (`make test`: -n 2 --dist loadfile) the suite does not end on one long file running alone.
_LONG_FILES = ("test_slurm.py", "test_workflow.py", "test_energy.py", "test_workflow_hostile.py",
               "test_calibration_families.py", "test_report_browser.py", "test_amorphous.py")


def pytest_collection_modifyitems(session, config, items):
    """Stable reorder: the long files' tests first, in _LONG_FILES order; the rest as collected."""
    def weight(item):
        name = item.path.name
        return _LONG_FILES.index(name) if name in _LONG_FILES else len(_LONG_FILES)
    items.sort(key=weight)
