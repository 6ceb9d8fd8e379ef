"""The single-material and single-pair commands: stability, window, pair, decompose.

Potentials: a command that uses a potential takes it from `--potential` or from a material's state
(`NAME@charged`, `NAME@4.3V`); every source that gives one must give the same value, else the command
stops with an error naming both. The header of every result shows the potential used.
"""

from __future__ import annotations

from screening.data.sources import finish_table, load_table
from screening.errors import InputError
from screening.interfaces.answer_text import (data_lines, format_number, format_phases, format_value,
                                              window_lines)
from screening.provenance import CONVENTIONS, clean_numbers, package_versions
from screening.screen.electronic import (gap_text, kink_interphases, material_gap, pair_interphase,
                                         properties_for, window_interphases)
from screening.screen.materials import Material, resolve_material
from screening.thermo.analysis import (analyse_decomposition_at, analyse_pair, analyse_stability,
                                       analyse_window)


def _uncertainty_settings(args):
    """The --uncertainty settings (checked before any data is read), or None."""
    from screening.interfaces.uncertainty_cli import settings_from

    return settings_from(args)


def _with_uncertainty(payload: dict, lines: list, settings, fields: dict, extra_lines: list) -> None:
    payload.update(fields)
    payload["uncertainty"] = settings.as_dict()
    lines.extend(extra_lines)

POTENTIAL_TOL = 1e-9  # V: two sources of a potential agree within this
_phases = format_phases  # also used by energy_cli


def _table(args, *materials: Material, with_li: bool = True):
    """The entry table: the data file, or the Materials Project entries of the materials' system."""
    if getattr(args, "source", "snapshot") == "mp":
        from screening.data.mp_source import load_mp_entries

        elements = {str(e) for m in materials for e in m.composition.elements} | ({"Li"} if with_li else set())
        table = load_mp_entries(sorted(elements), thermo_type=args.thermo_type, use_cache=not args.no_cache)
        return finish_table(table, args.user_entries or (), args.user_scheme, **_selection(args))
    return load_table(args.entries, args.user_entries or (), args.user_scheme, use_cache=not args.no_cache,
                      **_selection(args))


def _selection(args) -> dict:
    """--user-mode and --exclude-entries (repeatable, several formulas each) for the data layer."""
    groups = getattr(args, "exclude_entries", None) or []
    return {"user_mode": getattr(args, "user_mode", None) or "add",
            "exclude_entries": tuple(f for group in groups for f in group)}


def _provenance(table, material_notes: list[str], properties=None) -> dict:
    out = {"data_source": table.source.as_dict(), "conventions": CONVENTIONS,
           "versions": {k: v for k, v in package_versions().items()
                        if k in ("screening", "screening_code_sha256", "pymatgen", "highspy", "python")}}
    user = sorted(table.names[table.user_supplied].tolist())
    out["user_supplied_entries"] = user
    if material_notes:
        out["notes"] = material_notes
    if properties is not None:
        out["property_data"] = properties.provenance()
    return out


def _header(material: Material) -> str:
    text = material.label
    formula = material.composition.reduced_formula
    if material.label.split("@")[0] != formula:
        text += f" ({formula})"
    if material.note:
        text += f"   [{material.note}]"
    return text


def agreed_potential(option: float | None, materials: list[Material]) -> float | None:
    """The one potential (V vs Li/Li+) given by `--potential` and the materials' states, or None.

    Two sources that disagree are an error naming both: a result is computed at one potential only.
    """
    sources = [("--potential", option, None)] if option is not None else []
    sources += [(m.spec or m.label, m.potential, m) for m in materials if m.potential is not None]
    if not sources:
        return None
    first_name, first, _ = sources[0]
    for name, value, material in sources[1:]:
        if abs(value - first) > POTENTIAL_TOL:
            charged = next((m for _, _, m in sources if m is not None and m.library_name
                            and m.role == "cathode"), None)
            hint = (f"; {charged.library_name}@{option:g}V is its charged composition at {option:g} V"
                    if charged is not None and option is not None else "")
            raise InputError(f"conflicting potentials: {first_name} gives {first:g} V but {name} gives "
                             f"{value:g} V vs Li/Li+: give the potential once{hint}")
    return float(first)


def _composition_notes(formula: str, in_data: bool, has_own_energy: bool) -> list[str]:
    if in_data or has_own_energy:
        return []
    return [f"{formula} is not a phase of the data: its composition lies between ordered phases (as a "
            "disordered solid solution does), so only its hull point is defined, the mixture of the "
            "hull phases; its energy above hull and decomposition energy need an energy of its own "
            "(--energy or --user-entries)"]


def stability_payload(table, material: Material, energy: float | None = None):
    """(JSON payload of `screening stability`, the parts its text needs) on an entry table."""
    potential = material.potential
    result = analyse_stability(table, material.composition, energy=energy)
    at_potential = (analyse_decomposition_at(table, material.composition, potential, energy=energy)
                    if potential is not None else None)
    notes = _composition_notes(result.formula, result.in_data, result.energy is not None)
    properties = properties_for(table)
    gap = material_gap(properties, result.formula, None if result.in_data else result.decomposition)
    notes += properties.notes[:1]
    payload = {"formula": result.formula, "material": material.as_dict(),
               "e_above_hull": result.e_above_hull,
               "decomposition_energy": result.decomposition_energy,
               "decomposition": result.decomposition,
               "in_data": result.in_data, "energy": result.energy, "hull_energy": result.hull_energy,
               "competing_phases": result.competing_phases,
               "at_potential": at_potential.as_dict() if at_potential else None,
               **gap, "notes": notes,
               "provenance": _provenance(table, material.notes, properties)}
    return payload, {"result": result, "at_potential": at_potential, "gap": gap}


def run_stability(args) -> dict:
    settings = _uncertainty_settings(args)
    material = resolve_material(args.material)
    potential = material.potential
    table = _table(args, material, with_li=potential is not None)
    payload, parts = stability_payload(table, material, args.energy)
    result, at_potential, gap = parts["result"], parts["at_potential"], parts["gap"]
    undefined = "not defined: no energy of its own (give --energy or --user-entries)"
    lines = [_header(material)]
    if result.in_data:
        lines.append("  in data:               yes")
    elif result.energy is not None:
        lines.append("  in data:               no (your --energy)")
    else:
        lines.append("  in data:               no: not a phase of the data, a composition between ordered "
                     "phases (only its hull point is known)")
    lines += [
        f"  formation energy:      {format_value(result.energy, ' eV/atom', 4, undefined)}",
        f"  hull energy:           {format_value(result.hull_energy, ' eV/atom', 4)}",
        f"  energy above hull:     {format_value(result.e_above_hull, ' eV/atom', 4, undefined)}",
        f"  decomposition energy:  {_decomposition_energy_text(result)}",
        f"  hull phases (atom fractions): {format_phases(result.decomposition)}"]
    if result.competing_phases:
        lines.append(f"  competing phases:      {format_phases(result.competing_phases)}")
    lines.append(f"  band gap:              {gap_text(gap)}")
    if at_potential is not None:
        lines.append(f"  open to Li at {format_number(potential, 3)} V: decomposition reaction energy "
                     f"{format_number(at_potential.reaction_energy, 4)} eV/atom (negative = released), "
                     f"{_decomposition_products(at_potential)}")
    if settings is not None:
        from screening.interfaces.uncertainty_cli import stability_uncertainty

        _with_uncertainty(payload, lines, settings,
                          *stability_uncertainty(settings, table, material.composition, result, args.energy))
    lines += data_lines(table)
    return {"json": clean_numbers(payload), "text": "\n".join(lines)}


def _decomposition_energy_text(result) -> str:
    value = result.decomposition_energy
    if value is None:
        if result.energy is None:
            return "not defined: no energy of its own"
        return "not defined for an element"
    sign = "unstable: above the hull" if value > 0 else "stable: below the hull without it"
    return f"{format_number(value, 4)} eV/atom ({sign}; pymatgen's convention)"


def _decomposition_products(result) -> str:
    if not result.reacts:
        return "stable at this potential"
    return f"forms {format_phases(result.products)} (Li change {format_number(result.li_change, 3, sign=True)})"


def window_payload(table, material: Material, as_is: bool = False, energy: float | None = None,
                   potential: float | None = None):
    """(JSON payload of `screening window`, the parts its text needs) on an entry table."""
    window, stab = analyse_window(table, material.composition, as_is=as_is, energy=energy)
    inside = window.contains(potential) if potential is not None else None
    notes = _composition_notes(window.formula, stab.in_data, stab.energy is not None)
    if window.zero_width:
        notes.append(f"zero-width window at {window.reduction_potential:.3f} V: on the hull the composition "
                     "lies inside a segment of the Li line, a mixture that takes up Li below this potential "
                     "and gives it up above")
    if window.decomposes_at_every_potential:
        notes.append("at its own energy the compound decomposes at every Li potential (Li uptake is downhill "
                     "below reduction_onset, which is above oxidation_onset, where Li release is); the "
                     "profile is the equilibrium one of its composition")
    properties = properties_for(table)
    gap = material_gap(properties, window.formula, None if stab.in_data else stab.decomposition)
    reduction_ip, oxidation_ip = window_interphases(properties, window)
    notes += properties.notes[:1]
    payload = {"formula": window.formula, "material": material.as_dict(),
               "e_above_hull": stab.e_above_hull, **gap,
               "reduction_interphase": reduction_ip.as_dict() if reduction_ip else None,
               "oxidation_interphase": oxidation_ip.as_dict() if oxidation_ip else None,
               "reduction_potential": window.reduction_potential,
               "oxidation_potential": window.oxidation_potential,
               "reduction_products": window.reduction_products,
               "oxidation_products": window.oxidation_products,
               "decomposes_at_every_potential": window.decomposes_at_every_potential,
               "reduction_onset": window.reduction_onset, "oxidation_onset": window.oxidation_onset,
               "zero_width": window.zero_width,
               "potential": potential, "potential_in_window": inside,
               "profile": [s.as_dict() for s in window.profile],
               "method": window.method, "notes": notes,
               "provenance": _provenance(table, material.notes, properties)}
    return payload, {"window": window, "stability": stab, "gap": gap,
                     "interphases": (reduction_ip, oxidation_ip)}


def run_window(args) -> dict:
    settings = _uncertainty_settings(args)
    if args.potential is not None and settings is None:
        raise InputError("--potential of a window applies only with --uncertainty (the probability that "
                         "each limit lies beyond it)")
    material = resolve_material(args.material)
    potential = agreed_potential(args.potential, [material])
    table = _table(args, material)
    payload, parts = window_payload(table, material, args.as_is, args.energy, potential)
    window, stab, gap = parts["window"], parts["stability"], parts["gap"]
    reduction_ip, oxidation_ip = parts["interphases"]
    if args.plot:
        from screening.interfaces.plots import plot_voltage_profile
        plot_voltage_profile(window, args.plot)
    e_above = format_value(stab.e_above_hull, " eV/atom", 4,
                           "not defined (not a phase of the data; a composition between ordered phases)")
    lines = [_header(material), f"  energy above hull: {e_above}   method: {window.method}"]
    lines += window_lines(window, in_data=stab.in_data)
    lines.append(f"  band gap: {gap_text(gap)}")
    for side, interphase in (("reduction", reduction_ip), ("oxidation", oxidation_ip)):
        if interphase is not None:
            lines.append(f"  interphase beyond the {side} limit: {interphase.describe()}")
    if potential is not None:
        lines.append(f"  at {format_number(potential, 3)} V ({material.spec or material.label}): "
                     f"{_where(window, potential)}")
    if settings is not None:
        from screening.interfaces.uncertainty_cli import window_uncertainty

        _with_uncertainty(payload, lines, settings,
                          *window_uncertainty(settings, table, material.composition, window, args.as_is,
                                              args.energy, potential))
    lines += data_lines(table)
    return {"json": clean_numbers(payload), "text": "\n".join(lines)}


def _where(window, potential: float) -> str:
    if window.decomposes_at_every_potential:
        return "outside: it decomposes at every potential"
    if window.contains(potential):
        return "inside the window"
    if window.reduction_potential is not None and potential < window.reduction_potential:
        return f"outside: below the reduction limit ({format_number(window.reduction_potential, 3)} V)"
    return f"outside: above the oxidation limit ({format_number(window.oxidation_potential, 3)} V)"


def pair_payload(table, mat_a: Material, mat_b: Material, potential: float | None = None,
                 own_energies: bool = False, mutual_only: bool = False):
    """(JSON payload of `screening pair`, the parts its text needs) on an entry table."""
    result = analyse_pair(table, mat_a.composition, mat_b.composition, potential=potential,
                          use_hull_energy=not own_energies, include_no_mixing_energy=not mutual_only)
    properties = properties_for(table)
    interphase = pair_interphase(properties, result)
    kink_types = kink_interphases(properties, result)
    payload = {**result.as_dict(), "materials": [mat_a.as_dict(), mat_b.as_dict()],
               "interphase": interphase.as_dict() if interphase else None,
               "provenance": _provenance(table, mat_a.notes + mat_b.notes + properties.notes[:1], properties)}
    for kink, kink_type in zip(payload["kinks"], kink_types):
        kink["interphase_type"] = kink_type
    return payload, {"result": result, "interphase": interphase, "kink_types": kink_types,
                     "properties": properties}


def run_pair(args) -> dict:
    settings = _uncertainty_settings(args)
    if args.reacts_below != 0.0 and settings is None:
        raise InputError("--reacts-below applies only with --uncertainty (the probability that the pair reacts)")
    mat_a, mat_b = resolve_material(args.a), resolve_material(args.b)
    potential = agreed_potential(args.potential, [mat_a, mat_b])
    table = _table(args, mat_a, mat_b, with_li=potential is not None)
    payload, parts = pair_payload(table, mat_a, mat_b, potential, args.own_energies, args.mutual_only)
    result, interphase, kink_types = parts["result"], parts["interphase"], parts["kink_types"]
    properties = parts["properties"]
    if args.plot:
        from screening.interfaces.plots import plot_reaction
        plot_reaction(result, args.plot)
    best = result.most_negative
    where = ("closed system" if result.potential is None
             else f"open to Li at {format_number(result.potential, 3)} V vs Li/Li+")
    lines = [f"{_header(mat_a)} | {_header(mat_b)}   ({where})",
             f"  most negative reaction energy: {format_number(best.reaction_energy, 4)} {result.energy_unit}"
             f" at x = {format_number(best.mixing_ratio, 4)}{_alone_text(result, mat_a, mat_b)}",
             f"  reaction: {best.reaction if result.reacts else 'no reaction (the pair is stable)'}",
             f"  interphase: {_interphase_text(interphase, properties)}"]
    lines += kink_lines(result, kink_types, getattr(args, "top", None))
    if settings is not None:
        from screening.interfaces.uncertainty_cli import pair_uncertainty

        fields, extra, kink_sds = pair_uncertainty(
            settings, table, mat_a.composition, mat_b.composition, result, potential,
            not args.own_energies, not args.mutual_only, args.reacts_below)
        for kink, sd in zip(payload["kinks"], kink_sds):  # first order at each kink
            kink["reaction_energy_std"] = sd
        _with_uncertainty(payload, lines, settings, fields, extra)
    lines += data_lines(table)
    return {"json": clean_numbers(payload), "text": "\n".join(lines)}


def kink_lines(result, kink_types, top: int | None = None) -> list[str]:
    """The kinks table (x order); with `top`, only the `top` most negative kinks."""
    unit = "eV/atom" if result.potential is None else "eV/non-Li atom"
    rows = list(zip(result.kinks, kink_types))
    shown = rows
    if top is not None and top < len(rows):
        keep = sorted(range(len(rows)), key=lambda i: (rows[i][0].reaction_energy, rows[i][0].mixing_ratio))[:top]
        shown = [rows[i] for i in sorted(keep)]
    title = "  kinks (x = atom fraction of the first material"
    title += (f"; the {len(shown)} most negative of {len(rows)}, --top):" if len(shown) < len(rows) else "):")
    lines = [title, f"    {'x':>7}  {'E_rxn ' + unit:>20}  {'interphase':<16}  reaction"]
    for kink, kink_type in shown:
        lines.append(f"    {format_number(kink.mixing_ratio, 4):>7}  {format_number(kink.reaction_energy, 4):>20}"
                     f"  {kink_type or 'no gap data':<16}  {kink.reaction}")
    return lines


def _interphase_text(interphase, properties) -> str:
    if interphase is None:
        return "unknown (no band-gap data)"
    from screening.screen.interphase import DEFAULT_MAGNITUDE

    return (f"{interphase.describe()}, judged over every kink below {DEFAULT_MAGNITUDE:g} "
            f"(gap threshold {properties.gap_threshold:g} eV PBE)")


def _alone_text(result, mat_a: Material, mat_b: Material) -> str:
    """Label a minimum at x = 0 or 1: one reactant reacting alone, not the pair."""
    alone = result.reactant_alone
    if alone is None:
        return ""
    this, other = (mat_a, mat_b) if result.most_negative.mixing_ratio == 1.0 else (mat_b, mat_a)
    how = ("decomposes by itself at its own energy" if result.potential is None
           else f"reacts with the Li reservoir at {format_number(result.potential, 3)} V")
    return f" ({this.label} alone: it {how}, without {other.label})"


def decompose_payload(table, material: Material, potentials, energy: float | None = None):
    """(JSON payload of `screening decompose`, its per-potential results) on an entry table."""
    results = [analyse_decomposition_at(table, material.composition, v, energy=energy) for v in potentials]
    payload = {"formula": material.composition.reduced_formula, "material": material.as_dict(),
               "decomposition": [r.as_dict() for r in results],
               "provenance": _provenance(table, material.notes)}
    return payload, results


def decompose_potentials(material: Material, potentials) -> list[float]:
    """The potentials of a decomposition: those given (each agreeing with the material's state), else
    the material's state, else 0 and 5 V."""
    if material.potential is not None and potentials:
        for value in potentials:
            agreed_potential(value, [material])
    return list(potentials or ([material.potential] if material.potential is not None else [0.0, 5.0]))


def run_decompose(args) -> dict:
    settings = _uncertainty_settings(args)
    material = resolve_material(args.material)
    potentials = decompose_potentials(material, args.potential)
    table = _table(args, material)
    payload, results = decompose_payload(table, material, potentials, args.energy)
    lines = [_header(material),
             "  decomposition reaction energy open to Li: eV per atom of the compound, negative = energy "
             "released, 0 = stable",
             f"    {'V vs Li/Li+':>11}  {'E_rxn eV/atom':>13}  {'Li change':>9}  phases"]
    for r in results:
        phases = format_phases(r.products) + ("" if r.reacts else "  (stable)")
        lines.append(f"    {format_number(r.potential, 3):>11}  {format_number(r.reaction_energy, 4):>13}"
                     f"  {format_number(r.li_change, 3, sign=True):>9}  {phases}")
    if settings is not None:
        from screening.interfaces.uncertainty_cli import decompose_uncertainty

        per_potential, extra = decompose_uncertainty(settings, table, material.composition, results, args.energy)
        for entry, fields in zip(payload["decomposition"], per_potential):
            entry.update(fields)
        payload["uncertainty"] = settings.as_dict()
        lines += extra
    lines += data_lines(table)
    return {"json": clean_numbers(payload), "text": "\n".join(lines)}

