"""ALD grids with `amorphous:`: each grid point at its hull energy plus its amorphous energy above the
hull, computed by ML melt-quench (screening.calc.amorphous) instead of a constant penalty.

In a screen config:
    candidates:
      grids:
        - ends: [Li2O, Al2O3]
          step: 0.25
          amorphous: true        # or a mapping: MeltQuenchSettings fields (atoms, quenches, seed,
                                 # melt_temperature, final_temperature, timestep, melt_steps, quench_steps,
                                 # relax_steps, fmax, friction, max_seconds) and calculator,
                                 # calculator_config, device, calibration_set
The values are cached per composition, calculator, settings, data file and calibration set.
"""

from __future__ import annotations

from dataclasses import replace

from screening.errors import InputError
from screening.safe_io import quote
from screening.screen.candidates import Candidate, grid, grid_size

MAX_AMORPHOUS_POINTS = 50
EXTRA_KEYS = ("calculator", "calculator_config", "device", "calibration_set")


def check_amorphous_grid(spec: dict, source: str) -> dict:
    """Validate a grid's `amorphous` value (with its step); returns the settings mapping."""
    if "penalty" in spec:
        raise InputError(f"{source}: a grid takes either 'penalty' or 'amorphous', not both")
    if grid_size(spec.get("step", 0.1)) > MAX_AMORPHOUS_POINTS:
        raise InputError(f"{source}: an amorphous grid computes each point by melt-quench: at most "
                         f"{MAX_AMORPHOUS_POINTS} points (step >= {1 / (MAX_AMORPHOUS_POINTS + 1):.3g})")
    return amorphous_settings(spec["amorphous"], source)


def amorphous_settings(value, source: str) -> dict:
    """true -> {} (defaults); a mapping -> checked settings; anything else: InputError (one line)."""
    from screening.calc.melt_quench import MeltQuenchSettings, settings_from

    if value is True:
        return {}
    where = f"{source}: grid amorphous"
    fields = set(MeltQuenchSettings.__dataclass_fields__)
    if not isinstance(value, dict):
        raise InputError(f"{where} must be true, false or a mapping of melt-quench settings, got {quote(value, 60)}")
    unknown = sorted(str(k) for k in value if k not in fields and k not in EXTRA_KEYS)
    if unknown:
        raise InputError(f"{where}: unknown key {quote(unknown[0], 40)} (allowed: "
                         f"{', '.join(sorted(fields | set(EXTRA_KEYS)))})")
    settings = {k: v for k, v in value.items() if k in fields}
    try:
        settings_from(settings, where)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None
    out = dict(settings)
    calculator = value.get("calculator")
    if calculator is not None:
        if not isinstance(calculator, str) or not 0 < len(calculator) <= 200:
            raise InputError(f"{where}: calculator must be a name or an import path, got {quote(calculator, 60)}")
        out["calculator"] = calculator
    config = value.get("calculator_config")
    if config is not None:
        if not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
            raise InputError(f"{where}: calculator_config must be a mapping of keyword arguments")
        out["calculator_config"] = config
    if value.get("device") is not None:
        from screening.calc.calculators import check_device

        try:
            out["device"] = check_device(value["device"])
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from None
    path = value.get("calibration_set")
    if path is not None:
        from screening.calc.calibration import load_calibration_set

        if not isinstance(path, str) or not 0 < len(path) <= 1000:
            raise InputError(f"{where}: calibration_set must be a file path, got {quote(path, 60)}")
        load_calibration_set(path)
        out["calibration_set"] = path
    return out


def amorphous_grid(spec: dict, table, used: list) -> list[Candidate]:
    """The grid's points with energy_penalty = their amorphous energy above the hull (negative values,
    possible within the calibration error, are taken as 0); a record per point is appended to `used`."""
    from screening.calc.amorphous import amorphous_penalties

    points = grid(tuple(spec["ends"]), spec.get("step", 0.1), 0.0)
    settings = amorphous_settings(spec["amorphous"], "config")
    found = amorphous_penalties([c.formula for c in points], table, settings,
                                where=f"grid {spec['ends'][0]}-{spec['ends'][1]} amorphous")
    out = []
    for c in points:
        record = found[c.formula]
        e = record["e_above_hull"]
        penalty = max(0.0, float(e["mean"]))
        note = (f"{c.note}; amorphous {1000 * e['mean']:.0f} +/- {1000 * e['std']:.0f} meV/atom above the hull "
                f"({e['n']} melt-quenches, {record['calculator']['name']}, reference: "
                f"{record['reference']['method']})")
        if penalty != e["mean"]:
            note += "; below the hull within the calibration error: taken as 0"
        out.append(replace(c, energy_penalty=penalty, note=note))
        used.append({"grid": [str(x) for x in spec["ends"]], "candidate": c.name, "formula": c.formula,
                     "energy_penalty": penalty, **record})
    return out
