"""`screening amorphous FORMULA|STRUCTURE`: energy of an amorphous (ALD-like) film above the hull by
machine-learned melt-quench (screening.calc.melt_quench, screening.calc.amorphous)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from screening.errors import InputError
from screening.interfaces.argtypes import bounded_float, bounded_int
from screening.provenance import clean_numbers


def add_command(sub, common) -> None:
    from screening.calc.melt_quench import (DENSITY_RANGE, MAX_ATOMS, MAX_QUENCHES, MAX_STEPS,
                                            MeltQuenchSettings)
    from screening.interfaces.energy_cli import _calculator_options

    d = MeltQuenchSettings()
    p = sub.add_parser("amorphous", parents=[common],
                       help="energy of the amorphous phase above the hull by ML melt-quench (mean and spread "
                            "over several quenches)")
    p.add_argument("material", help="formula (SiO2, LiNbO3) or a structure file of the composition's crystal "
                                    "(CIF/POSCAR/extxyz; then it is the crystalline reference)")
    _calculator_options(p)
    p.add_argument("--device", default="cpu", metavar="DEVICE",
                   help="cpu (default), cuda or cuda:N (sevennet and chgnet; refused if torch sees no GPU)")
    p.add_argument("--crystal", metavar="FILE",
                   help="the composition's crystal (CIF/POSCAR/extxyz) as reference; default: the calibration "
                        "set's compound or example of that composition, else the calibrated formation energy")
    p.add_argument("--density", type=bounded_float("density", *DENSITY_RANGE, "g/cm^3"), metavar="G_PER_CM3",
                   help="starting density (default: the relaxed crystal's, else an ionic-radii estimate)")
    p.add_argument("--atoms", type=bounded_int("--atoms", 1, MAX_ATOMS), default=d.atoms, metavar="N",
                   help=f"at least this many atoms in the cell (whole formula units; default {d.atoms})")
    p.add_argument("--quenches", type=bounded_int("--quenches", 1, MAX_QUENCHES), default=d.quenches,
                   metavar="N", help=f"independent melt-quenches (default {d.quenches})")
    p.add_argument("--seed", type=bounded_int("--seed", 0, 2 ** 32 - 1), default=d.seed, metavar="S",
                   help=f"seed of the first quench (the others take S+1, S+2, ...; default {d.seed})")
    p.add_argument("--melt-temperature", type=bounded_float("melt temperature", 300, 6000, "K"),
                   default=d.melt_temperature, metavar="K", help=f"default {d.melt_temperature:g} K")
    p.add_argument("--final-temperature", type=bounded_float("final temperature", 1, 1000, "K"),
                   default=d.final_temperature, metavar="K", help=f"default {d.final_temperature:g} K")
    p.add_argument("--timestep", type=bounded_float("timestep", 0.1, 5.0, "fs"), default=d.timestep,
                   metavar="FS", help=f"MD timestep (default {d.timestep:g} fs)")
    p.add_argument("--melt-steps", type=bounded_int("--melt-steps", 0, MAX_STEPS), default=d.melt_steps,
                   metavar="N", help=f"MD steps at the melt temperature (default {d.melt_steps})")
    p.add_argument("--quench-steps", type=bounded_int("--quench-steps", 1, MAX_STEPS), default=d.quench_steps,
                   metavar="N", help=f"MD steps of the linear quench (default {d.quench_steps})")
    p.add_argument("--relax-steps", type=bounded_int("--relax-steps", 0, MAX_STEPS), default=d.relax_steps,
                   metavar="N", help=f"final relaxation steps, positions and cell (default {d.relax_steps})")
    p.add_argument("--pre-relax-steps", type=bounded_int("--pre-relax-steps", 0, 10_000), default=d.pre_relax_steps,
                   metavar="N", help=f"positions-only relaxation of the random cell before the melt (default "
                                     f"{d.pre_relax_steps})")
    p.add_argument("--fmax", type=bounded_float("fmax", 1e-3, 10.0, "eV/A"), default=d.fmax, metavar="F",
                   help=f"force threshold of the final relaxation (default {d.fmax:g} eV/A)")
    p.add_argument("--time-limit", type=bounded_float("--time-limit", 1, 7 * 86400, "s"), default=d.max_seconds,
                   metavar="SECONDS", help=f"stop with an error after this wall time (default {d.max_seconds:.0f} s)")
    p.add_argument("--save-entry", metavar="FILE.json",
                   help="write the glass (mean formation energy) as a pymatgen PDEntry for --user-entries")


def _settings(args):
    from screening.calc.melt_quench import MeltQuenchSettings

    return MeltQuenchSettings(atoms=args.atoms, melt_temperature=args.melt_temperature,
                              final_temperature=args.final_temperature, timestep=args.timestep,
                              melt_steps=args.melt_steps, quench_steps=args.quench_steps,
                              relax_steps=args.relax_steps, fmax=args.fmax, quenches=args.quenches,
                              seed=args.seed, pre_relax_steps=args.pre_relax_steps, max_seconds=args.time_limit)


def _material(text: str):
    """(composition, crystal atoms or None, source): a structure file if one exists, else a formula."""
    from screening.chem import parse_formula

    path = Path(text).expanduser()
    if path.is_file():
        from screening.calc.structures import composition_of, read_structure

        atoms = read_structure(path)
        return composition_of(atoms).reduced_composition, atoms, str(path)
    if any(ch in text for ch in "/\\") or Path(text).suffix.lower() in (".cif", ".vasp", ".xyz", ".extxyz"):
        raise InputError(f"structure file not found: {text}")
    comp = parse_formula(text)
    if not comp.num_atoms > 0:
        raise InputError(f"formula {text!r} has no atoms")
    return comp, None, None


def run_amorphous(args) -> dict:
    from screening.calc.amorphous import check_elements, compute_amorphous, crystal_specs, entry_dict
    from screening.calc.calculators import check_device, load_calculator, require_ase
    from screening.calc.calibration import load_calibration_set
    from screening.calc.melt_quench import formula_units
    from screening.calc.structures import read_structure
    from screening.data.snapshot import atomic_write_bytes
    from screening.interfaces.commands import _provenance
    from screening.interfaces.energy_cli import _calculator_args, _progress_printer, _refuse_mp, _tables

    _refuse_mp(args)
    require_ase()
    settings = _settings(args)
    save = Path(args.save_entry).expanduser() if args.save_entry else None
    if save is not None and save.is_dir():
        raise InputError(f"--save-entry {save} is a folder: give a file name (e.g. entry.json)")
    comp, crystal, source = _material(args.material)
    if args.crystal:
        if crystal is not None:
            raise InputError("give the crystal either as the material or with --crystal, not both")
        crystal, source = read_structure(args.crystal), str(args.crystal)
        from screening.calc.structures import composition_of

        if composition_of(crystal).reduced_formula != comp.reduced_formula:
            raise InputError(f"--crystal {args.crystal} is {composition_of(crystal).reduced_formula}, not "
                             f"{comp.reduced_formula}")
    formula_units(comp, settings.atoms)  # whole formula units within the atom limit, before any work
    check_device(args.device)
    table, base = _tables(args)
    config, cset = _calculator_args(args)
    cset = cset or load_calibration_set()
    check_elements(comp, table, base, cset, crystal is None and not crystal_specs(comp, cset), args.calculator)
    calc, info = load_calculator(args.calculator, config, device=args.device)
    announce = None if args.json else (lambda line: print(f"  {line}", file=sys.stderr, flush=True))
    result = compute_amorphous(comp, table, base, calc, info, settings, cset=cset, crystal_atoms=crystal,
                               crystal_source=source, density=args.density, recalibrate=args.recalibrate,
                               progress=_progress_printer(not args.json), announce=announce)
    if save is not None:
        try:
            atomic_write_bytes(save, json.dumps([entry_dict(result)], indent=1, allow_nan=False).encode())
        except OSError as exc:
            raise InputError(f"cannot write --save-entry {save}: {exc.strerror or exc}") from None
    s = result.stats()
    payload = {**result.as_dict(), "device": args.device, "saved_entry": str(save) if save else None,
               "provenance": _provenance(table, [])}
    ref = result.reference
    lines = [f"{result.formula} amorphous: {result.cell_formula} ({result.n_atoms} atoms, {result.n_units} formula "
             f"units), {s['n']} melt-quench(es) with {result.calculator['name']} ({result.calculator['version']}, "
             f"{args.device})",
             f"  energy above hull:  {s['mean']:.3f} eV/atom (std {s['std']:.3f}, min {s['min']:.3f}, max "
             f"{s['max']:.3f}; {1000 * s['mean']:.0f} meV/atom)",
             "  per quench:         " + ", ".join(f"{v:.3f}" for v in result.e_above_hull),
             f"  density:            {s['density_mean']:.2f} g/cm^3 (std {s['density_std']:.2f}; start "
             f"{result.start_density:.2f}, {result.density_source})"]
    if ref["method"] == "crystal":
        lines.append(f"  reference:          relaxed crystal from {ref['crystal']}: {ref['crystal_energy_per_atom']:.4f} "
                     f"eV/atom, {ref['crystal_density']:.2f} g/cm^3; the crystal lies "
                     f"{1000 * ref['crystal_e_above_hull']:.0f} meV/atom above the hull ({ref['crystal_e_above_hull_from']})")
        lines.append(f"  glass - crystal:    {s['mean'] - ref['crystal_e_above_hull']:.3f} eV/atom (same calculator: "
                     "its systematic errors largely cancel)")
    else:
        lines.append(f"  reference:          no crystal of {result.formula}: calibrated formation energy against the "
                     f"data's hull ({result.hull_energy:.4f} eV/atom); calibration error {ref['calibration_error']:.3f} "
                     f"eV/atom ({ref.get('calibration_error_basis', 'largest held-out')}) applies on top of the spread")
        if ref.get("regime_warning"):
            lines.append(f"  warning:            {ref['regime_warning']}")
    lines.append(f"  formation energy:   {result.formation_energy:.4f} eV/atom (data's frame, mean)")
    lines.append(f"  method:             random cell, {settings.describe()}")
    if save is not None:
        lines.append(f"  saved entry:        {save} (use with --user-entries)")
    t = result.timings
    lines.append(f"  time:               {t['total']:.0f} s (quenches {t['quenches']:.0f} s, "
                 f"{t['quenches'] / s['n']:.0f} s each; crystal {t.get('crystal', 0):.0f} s)")
    return {"json": clean_numbers(payload), "text": "\n".join(lines)}
