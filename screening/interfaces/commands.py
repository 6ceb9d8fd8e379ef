"""The single-material and single-pair commands: stability, window, pair, decompose."""

from __future__ import annotations

from screening.data.sources import load_table
from screening.provenance import CONVENTIONS, clean_numbers, package_versions
from screening.screen.materials import Material, resolve_material
from screening.thermo.analysis import (analyse_decomposition_at, analyse_pair, analyse_stability,
                                       analyse_window)


def _table(args, *materials: Material, with_li: bool = True):
    """The entry table: the data file, or the Materials Project entries of the materials' system."""
    if getattr(args, "source", "snapshot") == "mp":
        from screening.data.mp_source import load_mp_entries

        elements = {str(e) for m in materials for e in m.composition.elements} | ({"Li"} if with_li else set())
        table = load_mp_entries(sorted(elements), thermo_type=args.thermo_type, use_cache=not args.no_cache)
        if args.user_entries:
            from screening.data.user_entries import merge_user_entries

            table = merge_user_entries(table, args.user_entries, scheme=args.user_scheme)
        return table
    return load_table(args.entries, args.user_entries or (), args.user_scheme, use_cache=not args.no_cache)


def _provenance(table, material_notes: list[str]) -> dict:
    out = {"data_source": table.source.as_dict(), "conventions": CONVENTIONS,
           "versions": {k: v for k, v in package_versions().items()
                        if k in ("screening", "screening_code_sha256", "pymatgen", "highspy", "python")}}
    user = sorted(table.names[table.user_supplied].tolist())
    out["user_supplied_entries"] = user
    if material_notes:
        out["notes"] = material_notes
    return out


def _fmt(value, unit="", digits=3) -> str:
    return "none" if value is None else f"{value:.{digits}f}{unit}"


def _phases(products: dict[str, float], digits=4) -> str:
    if not products:
        return "-"
    parts = []
    for name, amount in products.items():
        coeff = (f"{amount:.{digits}g}" if abs(amount) < 1e-3
                 else f"{amount:.{digits}f}".rstrip("0").rstrip("."))
        parts.append(name if coeff == "1" else f"{coeff} {name}")
    return " + ".join(parts)


def _header(material: Material) -> str:
    text = material.label
    formula = material.composition.reduced_formula
    if material.label.split("@")[0] != formula:
        text += f" ({formula})"
    if material.note:
        text += f"   [{material.note}]"
    return text


def run_stability(args) -> dict:
    material = resolve_material(args.material)
    table = _table(args, material, with_li=False)
    result = analyse_stability(table, material.composition, energy=args.energy)
    payload = {"formula": result.formula, "material": material.as_dict(),
               "e_above_hull": result.e_above_hull,
               "decomposition_energy": result.decomposition_energy,
               "decomposition": result.decomposition,
               "in_data": result.in_data, "energy": result.energy, "hull_energy": result.hull_energy,
               "competing_phases": result.competing_phases,
               "provenance": _provenance(table, material.notes)}
    lines = [_header(material),
             f"  in data:               {'yes' if result.in_data else 'no (hull energy only)'}",
             f"  formation energy:      {_fmt(result.energy, ' eV/atom', 4)}",
             f"  hull energy:           {_fmt(result.hull_energy, ' eV/atom', 4)}",
             f"  energy above hull:     {_fmt(result.e_above_hull, ' eV/atom', 4)}",
             f"  decomposition energy:  {_fmt(result.decomposition_energy, ' eV/atom', 4)}",
             f"  hull phases (atom fractions): {_phases(result.decomposition)}"]
    if result.competing_phases:
        lines.append(f"  competing phases:      {_phases(result.competing_phases)}")
    lines.append(f"  data: {table.source.path} (sha256 {table.source.sha256[:12]})")
    return {"json": clean_numbers(payload), "text": "\n".join(lines)}


def run_window(args) -> dict:
    material = resolve_material(args.material)
    table = _table(args, material)
    window, stab = analyse_window(table, material.composition, as_is=args.as_is, energy=args.energy)
    payload = {"formula": window.formula, "material": material.as_dict(),
               "e_above_hull": stab.e_above_hull,
               "reduction_potential": window.reduction_potential,
               "oxidation_potential": window.oxidation_potential,
               "reduction_products": window.reduction_products,
               "oxidation_products": window.oxidation_products,
               "profile": [s.as_dict() for s in window.profile],
               "method": window.method,
               "provenance": _provenance(table, material.notes)}
    if args.plot:
        from screening.interfaces.plots import plot_voltage_profile
        plot_voltage_profile(window, args.plot)
    lines = [_header(material),
             f"  energy above hull: {_fmt(stab.e_above_hull, ' eV/atom', 4)}   method: {window.method}",
             f"  window: {_fmt(window.reduction_potential, ' V')} to {_fmt(window.oxidation_potential, ' V')}"
             " vs Li/Li+",
             f"  below the reduction limit:  {_phases(window.reduction_products)}",
             f"  above the oxidation limit:  {_phases(window.oxidation_products)}",
             "  profile (per formula unit):",
             f"    {'V vs Li/Li+':>11}  {'Li change':>9}  phases"]
    for step in window.profile:
        lines.append(f"    {step.potential:11.3f}  {step.li_change:+9.3f}  {_phases(step.products)}")
    return {"json": clean_numbers(payload), "text": "\n".join(lines)}


def run_pair(args) -> dict:
    mat_a, mat_b = resolve_material(args.a), resolve_material(args.b)
    potential = args.potential
    if potential is None and (mat_a.potential is not None or mat_b.potential is not None):
        potential = mat_a.potential if mat_a.potential is not None else mat_b.potential
    table = _table(args, mat_a, mat_b, with_li=potential is not None)
    result = analyse_pair(table, mat_a.composition, mat_b.composition, potential=potential,
                          use_hull_energy=not args.own_energies,
                          include_no_mixing_energy=not args.mutual_only)
    payload = {**result.as_dict(), "materials": [mat_a.as_dict(), mat_b.as_dict()],
               "provenance": _provenance(table, mat_a.notes + mat_b.notes)}
    if args.plot:
        from screening.interfaces.plots import plot_reaction
        plot_reaction(result, args.plot)
    best = result.most_negative
    where = "closed system" if result.potential is None else f"open to Li at {result.potential:.3f} V vs Li/Li+"
    lines = [f"{_header(mat_a)} | {_header(mat_b)}   ({where})",
             f"  most negative reaction energy: {best.reaction_energy:.4f} {result.energy_unit}"
             f" at x = {best.mixing_ratio:.4f}",
             f"  reaction: {best.reaction if result.reacts else 'no reaction (the pair is stable)'}",
             "  kinks (x = atom fraction of the first material):",
             f"    {'x':>7}  {'E_rxn':>9}  reaction"]
    for kink in result.kinks:
        lines.append(f"    {kink.mixing_ratio:7.4f}  {kink.reaction_energy:9.4f}  {kink.reaction}")
    return {"json": clean_numbers(payload), "text": "\n".join(lines)}


def run_decompose(args) -> dict:
    material = resolve_material(args.material)
    table = _table(args, material)
    potentials = args.potential or [0.0, 5.0]
    results = [analyse_decomposition_at(table, material.composition, v, energy=args.energy)
               for v in potentials]
    payload = {"formula": material.composition.reduced_formula, "material": material.as_dict(),
               "decomposition": [r.as_dict() for r in results],
               "provenance": _provenance(table, material.notes)}
    lines = [_header(material), f"    {'V vs Li/Li+':>11}  {'E_decomp eV/atom':>16}  {'Li change':>9}  phases"]
    for r in results:
        lines.append(f"    {r.potential:11.3f}  {r.energy:16.4f}  {r.li_change:+9.3f}  {_phases(r.products)}")
    return {"json": clean_numbers(payload), "text": "\n".join(lines)}
