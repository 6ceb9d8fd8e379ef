"""Interface-stability screening for all-solid-state Li batteries from DFT formation energies.

Python API (imported on first use): `Explorer`, `stability`, `window`, `pair`, `decompose`, `load_run`
and the result classes; see screening.api and the README's "Python" section.
"""

__version__ = "0.1.0"

_API = ("Explorer", "stability", "window", "pair", "decompose", "load_run", "default_explorer",
        "StabilityResult", "WindowResult", "PairResult", "KinkResult", "DecompositionResult")
_ERRORS = ("InputError", "DataError", "ScreeningError")
__all__ = ["__version__", *_API, *_ERRORS]


def __getattr__(name: str):
    if name in _API:
        from screening import api

        return getattr(api, name)
    if name in _ERRORS:
        from screening import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'screening' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
