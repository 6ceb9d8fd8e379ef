"""`screening energy STRUCTURE` and `screening calibrate`: energies of new structures through ASE.

energy: read a structure (CIF, POSCAR, extxyz, ...), relax positions and cell with an ASE optimizer and
cell filter (SevenNet-0 by default, CHGNet, or any ASE calculator by import path with settings from a
YAML file), convert the total energy to a formation energy in the data set's frame with the calculator's
calibrated elemental references, and place it: energy above hull, decomposition, window.
calibrate: build (or show the cached) calibration of a calculator, with its fit and held-out errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from screening.errors import InputError
from screening.interfaces.answer_text import window_lines
from screening.interfaces.argtypes import bounded_float, bounded_int
from screening.provenance import clean_numbers


_fmax = bounded_float("fmax", 1e-4, 10.0, "eV/A")
_steps = bounded_int("steps", 1, 100_000)


def _calculator_options(p) -> None:
    p.add_argument("--calculator", metavar="NAME", default="sevennet",
                   help="'sevennet' (SevenNet-0, default), 'chgnet' (both need the ml extra) or an ASE "
                        "calculator's import path "
                        "MODULE:CLASS, e.g. ase.calculators.vasp:Vasp")
    p.add_argument("--calculator-config", metavar="FILE.yaml",
                   help="keyword arguments of the calculator (YAML mapping); for sevennet: model "
                        "(7net-0), torch_threads (1), device (cpu); for chgnet: model (0.3.0), "
                        "torch_threads (1), use_device")
    p.add_argument("--calibration-set", metavar="FILE.yaml",
                   help="compounds to calibrate the elemental references on "
                        "(default: screening/calc/calibration_set.yaml)")
    p.add_argument("--recalibrate", action="store_true",
                   help="rebuild the calculator's calibration instead of using the cached one "
                        "(--no-cache applies to the data file only)")


def add_commands(sub, common) -> None:
    """Register `energy` and `calibrate`."""
    from screening.calc.relax import DEFAULT_FMAX, DEFAULT_OPTIMIZER, DEFAULT_STEPS, OPTIMIZERS

    p = sub.add_parser("energy", parents=[common],
                       help="formation energy of a structure (CIF/POSCAR/extxyz) with SevenNet, CHGNet or "
                            "an ASE calculator; hull, window")
    p.add_argument("structure", help="structure file: CIF, POSCAR/CONTCAR or extxyz (the last frame of a "
                                     "trajectory), optionally gzip/bzip2/xz-compressed; at most 2000 atoms "
                                     "(SCREENING_MAX_ATOMS) and 8 MiB (SCREENING_MAX_STRUCTURE_BYTES)")
    _calculator_options(p)
    p.add_argument("--relax", action=argparse.BooleanOptionalAction, default=True,
                   help="relax positions and cell first (default) or take the energy as given")
    p.add_argument("--fmax", type=_fmax, default=DEFAULT_FMAX, metavar="F",
                   help=f"force threshold of the relaxation, eV/A (default {DEFAULT_FMAX})")
    p.add_argument("--steps", type=_steps, default=DEFAULT_STEPS, metavar="N",
                   help=f"maximum optimizer steps (default {DEFAULT_STEPS})")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=DEFAULT_OPTIMIZER,
                   help=f"ASE optimizer (default {DEFAULT_OPTIMIZER})")
    p.add_argument("--fixed-cell", action="store_true", help="relax positions only, keep the cell")
    p.add_argument("--save-entry", metavar="FILE.json",
                   help="write the result as a pymatgen PDEntry (formation energy) for --user-entries")

    p = sub.add_parser("calibrate", parents=[common],
                       help="a calculator's elemental references on known compounds: fit and held-out errors")
    _calculator_options(p)


def _refuse_mp(args) -> None:
    if getattr(args, "source", "snapshot") == "mp":
        raise InputError(f"'{args.command}' calibrates against the data file: use the snapshot or "
                         "--entries FILE, not --source mp")


def _tables(args):
    """(table to place the structure in: data + user entries, base table to calibrate against)."""
    from screening.data.snapshot import load_entries

    base = load_entries(args.entries, use_cache=not args.no_cache)
    user = getattr(args, "user_entries", None) or ()
    excluded = [f for group in (getattr(args, "exclude_entries", None) or []) for f in group]
    if not user and not excluded:
        return base, base
    from screening.data.sources import finish_table

    return finish_table(base, list(user), getattr(args, "user_scheme", None),
                        getattr(args, "user_mode", None) or "add", excluded), base


def _calculator_args(args):
    from screening.calc.calculators import read_config

    config = read_config(args.calculator_config)
    cset = None
    if args.calibration_set:
        from screening.calc.calibration import load_calibration_set

        cset = load_calibration_set(args.calibration_set)
    return config, cset


def _progress_printer(enabled: bool):
    if not enabled:
        return None

    def progress(done: int, total: int, formula: str) -> None:
        print(f"\r  calibration {done}/{total}: {formula:<12}", end="" if done < total else "\n",
              file=sys.stderr, flush=True)

    return progress if sys.stderr.isatty() else None


def _fmt(value, unit="", digits=4) -> str:
    return "not defined" if value is None else f"{value:.{digits}f}{unit}"


def _phases(products: dict[str, float]) -> str:
    from screening.interfaces.commands import _phases as phases

    return phases(products)


def _mev(value) -> str:
    return "n/a" if value is None else f"{1000 * value:.0f}"


def _calibration_line(cal) -> str:
    s = cal.stats()
    return (f"overall largest held-out error {_mev(s['holdout_max'])} meV/atom "
            f"(held-out MAE {_mev(s['holdout_mae'])}, RMSE {_mev(s['holdout_rmse'])}, {s['n_holdout']} "
            f"compounds); fit MAE {_mev(s['fit_mae'])} meV/atom ({s['n_fit']} points)")


def _stored(cached: bool, path) -> str:
    """How a stored calibration was found ('' if it was just built)."""
    from screening.calc.calibration import SHIPPED_DIR

    if not cached:
        return ""
    return "shipped with the package (--recalibrate rebuilds it)" if Path(path).parent == SHIPPED_DIR else "cached"


def run_energy(args) -> dict:
    from screening.calc.calculators import require_ase
    from screening.calc.energy import compute_energy, entry_dict
    from screening.data.snapshot import atomic_write_bytes
    from screening.interfaces.commands import _provenance

    _refuse_mp(args)
    require_ase()
    save = Path(args.save_entry).expanduser() if args.save_entry else None
    if save is not None and save.is_dir():
        raise InputError(f"--save-entry {save} is a folder: give a file name (e.g. entry.json)")
    table, base = _tables(args)
    config, cset = _calculator_args(args)
    result = compute_energy(args.structure, table, base, calculator=args.calculator,
                            calculator_config=config, do_relax=args.relax, fmax=args.fmax, steps=args.steps,
                            optimizer=args.optimizer, cell=not args.fixed_cell, calibration_set=cset,
                            recalibrate=args.recalibrate, progress=_progress_printer(not args.json))
    if save is not None:
        try:
            atomic_write_bytes(save, json.dumps([entry_dict(result)], indent=1, allow_nan=False).encode())
        except OSError as exc:
            raise InputError(f"cannot write --save-entry {save}: {exc.strerror or exc}") from None
    cal, rel, stab, window = result.calibration, result.relaxation, result.stability, result.window
    comp = result.composition
    payload = {
        "structure": result.path, "formula": result.formula, "cell_formula": comp.formula.replace(" ", ""),
        "n_atoms": int(comp.num_atoms), "calculator": result.calculator, "relaxation": rel.as_dict(),
        "total_energy": rel.energy, "total_energy_per_atom": rel.energy_per_atom,
        "formation_energy": result.formation_energy, "formation_energy_error": result.error,
        "family": result.family, "formation_energy_error_basis": result.error_basis,
        "calibration_warning": result.regime_warning,
        "data_formation_energy": result.data_energy,
        "difference_from_data": (result.formation_energy - result.data_energy
                                 if result.data_energy is not None else None),
        "e_above_hull": stab.e_above_hull, "hull_energy": stab.hull_energy,
        "decomposition_energy": stab.decomposition_energy, "decomposition": stab.decomposition,
        "competing_phases": stab.competing_phases,
        "window": None if window is None else window.as_dict(),
        "window_note": result.window_error,
        "calibration": {**cal.summary(), "cached": result.calibration_cached,
                        "cache_file": result.calibration_path, "mu": cal.mu},
        "saved_entry": str(save) if save is not None else None,
        "timings": result.timings,
        "provenance": _provenance(table, []),
    }
    cell = comp.formula.replace(" ", "")
    conv = "converged" if rel.converged else f"NOT converged in {rel.steps} steps"
    lines = [f"{result.formula} ({cell}, {int(comp.num_atoms)} atoms) from {result.path}",
             f"  calculator:            {result.calculator['name']} ({result.calculator['version']})"]
    if rel.relaxed:
        cell_part = f" + {rel.cell_filter}" if rel.cell_filter else " (fixed cell)"
        lines.append(f"  relaxation:            {rel.optimizer}{cell_part}, {rel.steps} steps, {conv} "
                     f"(max force {rel.max_force:.3f} eV/A), volume {rel.volume_initial:.2f} -> "
                     f"{rel.volume_final:.2f} A^3")
    else:
        lines.append(f"  relaxation:            not relaxed (single point; max force {rel.max_force:.3f} eV/A)")
    lines += [f"  total energy:          {rel.energy:.4f} eV ({rel.energy_per_atom:.4f} eV/atom)",
              f"  formation energy:      {result.formation_energy:.4f} +/- {result.error:.3f} eV/atom "
              f"(data set's frame; {result.family}: {result.error_basis})",
              f"  calibration error:     {_calibration_line(cal)}"]
    if result.regime_warning:
        lines.append(f"  WARNING (GGA/GGA+U):   {result.regime_warning}")
    if result.data_energy is not None:
        lines.append(f"  data set's value:      {result.data_energy:.4f} eV/atom (lowest entry; difference "
                     f"{1000 * (result.formation_energy - result.data_energy):+.0f} meV/atom)")
    else:
        lines.append("  data set's value:      not in the data (a composition new to it: only its hull point is known)")
    lines += [f"  hull energy:           {_fmt(stab.hull_energy, ' eV/atom')}",
              f"  energy above hull:     {_fmt(stab.e_above_hull, ' eV/atom')}",
              f"  decomposition energy:  {_fmt(stab.decomposition_energy, ' eV/atom')}",
              f"  hull phases (atom fractions): {_phases(stab.decomposition)}"]
    if stab.competing_phases:
        lines.append(f"  competing phases:      {_phases(stab.competing_phases)}")
    if window is not None:
        # the same words as `screening window` (a window that decomposes at every potential, zero width)
        lines.append("  at its own energy:")
        lines += ["  " + line for line in window_lines(window, in_data=result.data_energy is not None)]
    elif result.window_error:
        lines.append(f"  window:                {result.window_error}")
    if save is not None:
        lines.append(f"  saved entry:           {save} (use with --user-entries)")
    how = _stored(result.calibration_cached, result.calibration_path) or f"built in {cal.seconds:.0f} s"
    lines.append(f"  calibration: {how}, {result.calibration_path}")
    lines.append(f"  data: {table.source.path} (sha256 {table.source.sha256[:12]})")
    lines.append(f"  time: {result.timings['total']:.1f} s (relaxation {result.timings['relaxation']:.1f} s)")
    return {"json": clean_numbers(payload), "text": "\n".join(lines)}


def run_calibrate(args) -> dict:
    from screening.calc.calculators import load_calculator, require_ase
    from screening.calc.calibration import get_calibration, load_calibration_set
    from screening.calc.calibration_families import element_table_lines, family_table_lines

    _refuse_mp(args)
    require_ase()
    _, base = _tables(args)
    config, cset = _calculator_args(args)
    cset = cset or load_calibration_set()
    calc, info = load_calculator(args.calculator, config)
    cal, cached, path = get_calibration(calc, info, base, cset, recalibrate=args.recalibrate,
                                        progress=_progress_printer(not args.json))
    payload = {**cal.as_dict(), "summary": cal.summary(), "cached": cached, "cache_file": str(path)}
    lines = [f"calibration of {info.name} ({info.version}) against {base.source.path}",
             f"  {_calibration_line(cal)}",
             f"  held out (seed {cset.seed}): {', '.join(cal.summary()['holdout']) or 'none'}",
             cal.table_text(),
             "  errors per family, over its compounds without a +U element (held-out split and leave-one-out, meV/atom; "
             "the error printed with an energy is its family's, or its +U element's where larger):",
             *family_table_lines(cal.points, cal.error),
             "  +U references (a structure holding one reports the larger of this and its family's error):",
             *element_table_lines(cal.points),
             "  references mu (eV/atom): " + ", ".join(f"{el} {v:.4f}" for el, v in sorted(cal.mu.items()))]
    for item in cal.skipped:
        lines.append(f"  skipped {item['formula']}: {item['reason']}")
    how = _stored(cached, path) or "built"
    lines.append(f"  {how}: {path} (building took {cal.seconds:.0f} s)")
    return {"json": clean_numbers(payload), "text": "\n".join(lines)}
