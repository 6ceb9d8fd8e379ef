"""What every result records about how it was made: conventions, versions, data source."""

from __future__ import annotations

import datetime as _dt
import hashlib
import platform
from functools import lru_cache
from importlib import metadata
from pathlib import Path

CONVENTIONS = {
    "energies": "formation energies, eV/atom (open to Li: eV per atom of the non-Li elements)",
    "potentials": "V vs Li/Li+ (Li metal = 0 V; V = -mu_Li in eV)",
    "hull": "exact lower convex hull by linear programming (HiGHS); lowest polymorph per composition",
    "window": "metastable compounds lowered onto the hull first (Zhu, He & Mo 2015) unless as_is",
    "reactant_energies": "hull energies (pymatgen use_hull_energy=True) unless own energies are asked for",
    "open_system_reactants": "each reactant's own reaction with the Li reservoir included "
                             "(pymatgen include_no_mixing_energy=True) unless mutual_only",
    "mixing_ratio": "atom fraction of the first reactant in the mixture",
    "e_above_hull": "eV/atom, >= 0: own energy minus the hull energy at the composition",
    "decomposition_energy": "eV/atom, pymatgen get_decomp_and_phase_separation_energy: > 0 unstable "
                            "(= e_above_hull), < 0 stable (minus the distance to the hull without it)",
    "decomposition_reaction_energy": "eV per atom of the compound, open to Li at a potential (Zhu 2015): "
                                     "compound + Li reservoir -> products, negative = energy released, "
                                     "0 = stable at that potential",
    "reaction_energy": "closed: eV/atom of mixture; open to Li: eV per atom of the non-Li elements; "
                       "negative = energy released, 0 = no reaction",
    "potential_sources": "--potential or a material's state (NAME@charged, NAME@4.3V); sources that "
                         "disagree are an error",
}

_PACKAGES = ("screening", "pymatgen", "numpy", "scipy", "highspy", "pandas", "pyarrow", "dask",
             "distributed", "mp-api", "smact")


@lru_cache(maxsize=1)
def code_digest() -> str:
    """sha256 of the package's own source as imported (.py and .yaml files, with their paths).

    The version number does not change with every edit of a checkout; this does. Results record it,
    and the Snakemake rules keep it in their params, so new code reruns the workflow.
    """
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*")
                       if p.suffix in (".py", ".yaml") and "__pycache__" not in p.parts and p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "screening_code_sha256": code_digest()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def now_utc() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def clean_numbers(value, digits: int = 9):
    """Round floats (and drop -0.0) recursively so identical inputs print identical bytes."""
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return None
        rounded = round(value, digits)
        return 0.0 if rounded == 0 else rounded
    if isinstance(value, dict):
        return {k: clean_numbers(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_numbers(v, digits) for v in value]
    return value
