"""Calculators: SevenNet-0 by default, CHGNet, or any ASE calculator named by import path.

``load_calculator(name, config)``
    * ``"sevennet"`` (default): SevenNet-0 (11 Jul 2024), the universal potential of the `sevenn`
      package, whose wheel ships its weights (no download). Config keys: ``model`` (default ``7net-0``;
      the wheel also ships ``7net-l3i5``, and ``7net-mf-0`` with ``modal``), ``torch_threads`` (default
      1), ``device`` (default ``cpu``); the others go to ``SevenNetCalculator``.
      Why it is the default: on the calibration set against the data set's energies it is the more
      accurate of the two offline potentials (held-out MAE 11 vs 16 meV/atom), and on the Nb oxides
      that set coating windows it is far closer (LiNbO3 -8 vs -25 meV/atom, i.e. its window edges
      0.04 V instead of 0.12 V from the data's).
    * ``"chgnet"``: the universal potential of the `chgnet` package, whose wheel ships its weights.
      Config keys: ``model`` (the pretrained version, default ``0.3.0``), ``torch_threads`` (default 1:
      faster than more for small cells on a CPU); the others go to ``CHGNetCalculator``
      (e.g. ``use_device: cpu``).
    * ``"package.module:ClassName"`` (or ``package.module.ClassName``): ``ClassName(**config)``, any
      ASE calculator, e.g. ``ase.calculators.vasp:Vasp`` or ``gpaw:GPAW`` with their settings in a
      YAML file. The calibration is cached per calculator name, package version and settings.

The machine-learned dependencies are an optional extra; without them InputError tells how to install.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from screening.errors import InputError
from screening.safe_io import LIMITS, load_yaml, quote, read_text

DEFAULT_CALCULATOR = "sevennet"
SEVENNET_DEFAULT_MODEL = "7net-0"
CHGNET_DEFAULT_MODEL = "0.3.0"
MAX_TORCH_THREADS = 1024
TORCH_THREADS = 1  # small cells: one thread is faster than two on a CPU (and far faster on a busy one)
INSTALL_HINT = ("pip install torch==2.13.0 && pip install 'screening[ml]' "
                "(CPU PyTorch first, then sevenn, chgnet and ase)")
_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*([:.][A-Za-z_][\w]*)$")


@dataclass
class CalculatorInfo:
    """What identifies a calculator's energies: its name, versions and settings."""

    name: str
    version: str
    config: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Stable digest of name, version and settings (the calibration cache key's calculator part)."""
        text = json.dumps({"name": self.name, "version": self.version, "config": self.config},
                          sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9]+", "-", self.name).strip("-").lower() or "calculator"

    def as_dict(self) -> dict:
        return {"name": self.name, "version": self.version, "config": self.config}


def require_ase() -> None:
    try:
        import ase  # noqa: F401
    except ImportError:
        raise InputError(f"the energy command needs ASE and, for SevenNet or CHGNet, the machine-learned extra: "
                         f"{INSTALL_HINT}") from None


def read_config(path) -> dict:
    """Keyword arguments of a calculator from a YAML (or JSON) file: a mapping.

    Read with screening.safe_io: size, nesting depth, alias expansion and integer digits are bounded.
    """
    if path is None:
        return {}
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"calculator config file not found: {path}")
    what = f"calculator config {path}"
    data = load_yaml(read_text(path, "calculator config", limit=LIMITS.max_config_bytes), what)
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise InputError(f"{what} must be a mapping of keyword arguments")
    return data


def _package_version(module_name: str) -> str:
    from importlib import metadata

    top = module_name.split(".")[0]
    try:
        dists = metadata.packages_distributions().get(top, [])
        for dist in dists:
            return f"{dist} {metadata.version(dist)}"
    except Exception:
        pass
    module = importlib.import_module(top)
    return f"{top} {getattr(module, '__version__', 'unknown')}"


@contextlib.contextmanager
def quiet_stdout():
    """Packages that print (CHGNet: 'CHGNet will run on cpu') must not spoil --json output."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


DEVICES = ("cpu", "cuda", "cuda:N")
_DEVICE = re.compile(r"^(cpu|cuda(:[0-9]{1,3})?)$")


def check_device(device) -> str:
    """'cpu', 'cuda' or 'cuda:N', usable by torch here; InputError with one line otherwise."""
    if not isinstance(device, str) or not _DEVICE.match(device.strip()):
        raise InputError(f"device must be cpu, cuda or cuda:N, not {quote(device)}")
    device = device.strip()
    if device == "cpu":
        return device
    try:
        import torch
    except ImportError as exc:
        raise _not_installed("torch", exc, "torch") from None
    if not torch.cuda.is_available():
        raise InputError(f"device {device}: torch sees no GPU here (torch {torch.__version__}, "
                         f"cuda.is_available() is False); use --device cpu or a CUDA build of torch on a GPU machine")
    index = int(device.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        raise InputError(f"device {device}: torch sees {torch.cuda.device_count()} GPU(s) (cuda:0.."
                         f"cuda:{torch.cuda.device_count() - 1})")
    return device


def load_calculator(name: str | None = None, config: dict | None = None, device: str | None = None):
    """(ASE calculator, CalculatorInfo); InputError with one line for anything unusable.

    device: 'cpu' (the calculators' default), 'cuda' or 'cuda:N' for SevenNet and CHGNet (checked: a
    GPU torch cannot see is an InputError); other calculators take their device in their config.
    """
    require_ase()
    name = (name or DEFAULT_CALCULATOR).strip()
    config = dict(config or {})
    builtin = {"sevennet": _sevennet, "chgnet": _chgnet}.get(name.lower())
    if device is not None:
        device = check_device(device)
        if builtin is None and device != "cpu":
            raise InputError(f"a device applies to sevennet and chgnet; give {name}'s device in its calculator "
                             "config")
        if builtin is _sevennet:
            config["device"] = device
        elif builtin is _chgnet:
            config["use_device"] = device
    if builtin is _sevennet and "device" in config:
        check_device(config["device"])
    if builtin is _chgnet and config.get("use_device") is not None:
        check_device(config["use_device"])
    if builtin is not None:
        return builtin(config)
    if not _IMPORT_PATH.match(name):
        raise InputError(f"unknown calculator {quote(name)}: use 'sevennet', 'chgnet' or an ASE calculator's "
                         "import path, MODULE:CLASS (e.g. ase.calculators.emt:EMT)")
    module_name, _, attr = name.rpartition(":") if ":" in name else name.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise InputError(f"calculator {name!r} not found: no module named {exc.name!r}") from None
    except Exception as exc:
        raise InputError(f"calculator {name!r}: importing {module_name} failed: "
                         f"{type(exc).__name__}: {' '.join(str(exc).split())[:120]}") from None
    factory = getattr(module, attr, None)
    if factory is None or not callable(factory):
        raise InputError(f"calculator {name!r} not found: module {module_name} has no {attr!r}")
    try:
        with quiet_stdout():
            calc = factory(**config)
    except Exception as exc:
        raise InputError(f"calculator {name!r} could not be created with {sorted(config) or 'no settings'}:"
                         f" {type(exc).__name__}: {' '.join(str(exc).split())[:120]}") from None
    if not hasattr(calc, "get_potential_energy"):
        raise InputError(f"calculator {name!r} is not an ASE calculator (no get_potential_energy)")
    canonical = f"{module_name}:{attr}"
    return calc, CalculatorInfo(canonical, _package_version(module_name), _jsonable(config))


def _jsonable(config: dict) -> dict:
    return json.loads(json.dumps(config, sort_keys=True, default=str))


@lru_cache(maxsize=4)
def _chgnet_model(model_name: str):
    """The pretrained model, loaded once per process (the wheel ships the weights)."""
    from chgnet.model import CHGNet

    with quiet_stdout():
        return CHGNet.load(model_name=model_name, verbose=False)


def _set_threads(name: str, config: dict) -> None:
    """Pop `torch_threads` from the config and apply it (InputError if it is not a whole number >= 1)."""
    import torch

    threads = config.pop("torch_threads", TORCH_THREADS)
    try:
        if isinstance(threads, bool) or int(threads) != threads or not 1 <= int(threads) <= MAX_TORCH_THREADS:
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{name} config: torch_threads must be a whole number >= 1 (at most "
                         f"{MAX_TORCH_THREADS}), not {quote(threads)}") from None
    torch.set_num_threads(int(threads))


def _not_installed(label: str, exc: ImportError, package: str) -> InputError:
    missing = getattr(exc, "name", None) or package
    return InputError(f"{label} is not installed ({missing} missing): {INSTALL_HINT}")


def _not_loaded(label: str, model_name: str, config: dict, exc: Exception, note: str = "") -> InputError:
    return InputError(f"{label} model {model_name!r} could not be loaded with {sorted(config) or 'defaults'}"
                      f"{note}: {type(exc).__name__}: {' '.join(str(exc).split())[:120]}")


@lru_cache(maxsize=2)
def _sevennet_calculator(model_name: str, config_json: str):
    """One SevenNetCalculator per model and settings in a process (loading the model takes seconds; an
    ASE calculator recomputes whenever the atoms differ from its last ones, so sharing it is safe)."""
    from sevenn.calculator import SevenNetCalculator

    with quiet_stdout():
        return SevenNetCalculator(model=model_name, **json.loads(config_json))


def _sevennet(config: dict):
    try:
        import torch  # noqa: F401
        from sevenn import __version__ as sevenn_version
        from sevenn.calculator import SevenNetCalculator  # noqa: F401
    except ImportError as exc:
        raise _not_installed("SevenNet", exc, "sevenn") from None
    model_name = str(config.pop("model", SEVENNET_DEFAULT_MODEL))
    _set_threads("sevennet", config)
    config.setdefault("device", "cpu")
    try:
        calc = _sevennet_calculator(model_name, json.dumps(_jsonable(config), sort_keys=True))
    except Exception as exc:
        raise _not_loaded("SevenNet", model_name, config, exc,
                          " (offline, the wheel ships 7net-0, 7net-l3i5 and 7net-mf-0)") from None
    return calc, CalculatorInfo("sevennet", f"sevenn {sevenn_version} model {model_name}",
                                _jsonable({"model": model_name, **config}))


def _chgnet(config: dict):
    try:
        import torch  # noqa: F401
        from chgnet import __version__ as chgnet_version
        from chgnet.model.dynamics import CHGNetCalculator
    except ImportError as exc:
        raise _not_installed("CHGNet", exc, "chgnet") from None
    model_name = str(config.pop("model", CHGNET_DEFAULT_MODEL))
    _set_threads("chgnet", config)
    try:
        model = _chgnet_model(model_name)
        with quiet_stdout():
            calc = CHGNetCalculator(model=model, **config)
    except Exception as exc:
        raise _not_loaded("CHGNet", model_name, config, exc) from None
    version = f"chgnet {chgnet_version} model {getattr(model, 'version', None) or model_name}"
    return calc, CalculatorInfo("chgnet", version, _jsonable({"model": model_name, **config}))
