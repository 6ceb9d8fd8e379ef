"""`--uncertainty` for stability, window, pair and decompose: error bars on every energy and potential.

JSON: each number X gains X_std and X_interval_95 ([low, high], 95 %), plus probabilities
(p_stable, p_reacts, p_oxidation_limit_above, p_reduction_limit_below) and, with Monte Carlo, the
outcomes (product sets) seen in more than 5 % of the draws. Text: an "uncertainty" block.
"""

from __future__ import annotations

from pymatgen.core import Composition

from screening.chem import parse_formula
from screening.errors import InputError
from screening.interfaces.answer_text import format_number
from screening.thermo.analysis import system_for
from screening.thermo.error_defaults import DEFAULT_DRAWS, DEFAULT_INDEPENDENT_ERROR
from screening.thermo.error_model import ErrorModel, check_error
from screening.thermo.propagation import (Settings, first_order, frequencies, normal_probability_below,
                                          perturbed_systems, sample_summary, std_of)
from screening.thermo.reaction import NO_REACTION_TOL, interface_reaction
from screening.thermo.stability import STABLE_TOL, decomposition_at_potential, stability
from screening.thermo.window import electrochemical_window

MAX_ENTRY_ERRORS = 1000
OUTCOME_SHARE = 0.05  # Monte Carlo outcomes (product sets) seen in more than this share are listed


def settings_from(args) -> Settings | None:
    """The propagation settings of the command line, or None without --uncertainty."""
    if getattr(args, "uncertainty", None) is None:
        for option, default in (("draws", DEFAULT_DRAWS), ("seed", 0),
                                ("independent_error", DEFAULT_INDEPENDENT_ERROR),
                                ("correction_errors", "mp2020"), ("entry_error", [])):
            if getattr(args, option, default) != default:
                raise InputError(f"--{option.replace('_', '-')} applies only with --uncertainty")
        return None
    if len(args.entry_error) > MAX_ENTRY_ERRORS:
        raise InputError(f"at most {MAX_ENTRY_ERRORS} --entry-error values")
    entry_errors = []
    for text in args.entry_error:
        formula, sep, value = text.partition("=")
        if not sep or not formula.strip():
            raise InputError(f"--entry-error {text!r}: give FORMULA=EV_PER_ATOM, e.g. Li3PO4=0.03")
        try:
            comp = parse_formula(formula.strip())
        except InputError as exc:
            raise InputError(f"--entry-error {text!r}: {formula.strip()!r} is not a formula ({exc})") from None
        entry_errors.append((comp.reduced_formula, check_error(f"--entry-error {comp.reduced_formula}", value)))
    model = ErrorModel(check_error("--independent-error", args.independent_error), args.correction_errors,
                       tuple(entry_errors))
    return Settings(args.uncertainty, model, args.draws, args.seed)


def _fields(name: str, summary: dict) -> dict:
    return {f"{name}_std": summary["std"], f"{name}_interval_95": summary["interval_95"]}


def _line(label: str, value, summary: dict, unit: str, digits: int) -> str:
    if value is None or summary["std"] is None:
        return f"    {label}: not defined"
    low, high = summary["interval_95"]
    return (f"    {label}: {format_number(value, digits)} +/- {format_number(summary['std'], digits)} {unit} "
            f"(95 %: {format_number(low, digits)} to {format_number(high, digits)})")


def _header(settings: Settings) -> str:
    model = settings.model
    how = (f"Monte Carlo, {settings.draws} correlated draws, seed {settings.seed}"
           if settings.method == "monte-carlo" else "first order from the decompositions")
    return (f"  uncertainty ({how}; {model.independent:g} eV/atom per composition, "
            f"correction errors {model.corrections}):")


def stability_uncertainty(settings: Settings, table, comp: Composition, result, energy) -> tuple[dict, list]:
    chemsys = system_for(table, comp)
    name = comp.reduced_formula
    names = ("hull_energy", "e_above_hull", "decomposition_energy")
    if settings.method == "first-order":
        summaries = {q: first_order(getattr(result, q), std_of(settings, chemsys, name, result.gradients.get(q)))
                     for q in names}
        d, sd = result.decomposition_energy, summaries["decomposition_energy"]["std"]
        p_stable = normal_probability_below(d, sd, STABLE_TOL) if d is not None and sd is not None else None
    else:
        samples = {q: [] for q in names}
        stable = []
        for drawn, own in perturbed_systems(chemsys, settings, name, energy):
            r = stability(drawn, comp, energy=own)
            for q in names:
                samples[q].append(getattr(r, q))
            stable.append(r.is_stable)
        summaries = {q: sample_summary(samples[q]) for q in names}
        p_stable = sum(stable) / len(stable) if result.e_above_hull is not None else None
    fields = {k: v for q in names for k, v in _fields(q, summaries[q]).items()}
    fields["p_stable"] = p_stable
    lines = [_header(settings)]
    lines += [_line(q.replace("_", " "), getattr(result, q), summaries[q], "eV/atom", 4) for q in names]
    if p_stable is not None:
        lines.append(f"    probability that it is on the hull: {format_number(p_stable, 3)}")
    return fields, lines


def window_uncertainty(settings: Settings, table, comp: Composition, window, as_is: bool, energy,
                       potential: float | None) -> tuple[dict, list]:
    chemsys = system_for(table, comp, extra=("Li",))
    name = comp.reduced_formula
    red_name, ox_name = (("reduction_onset", "oxidation_onset") if window.decomposes_at_every_potential
                         else ("reduction_potential", "oxidation_potential"))
    red, ox = getattr(window, red_name), getattr(window, ox_name)
    fields, outcomes = {}, {}
    if settings.method == "first-order":
        red_sd = std_of(settings, chemsys, name, window.reduction_gradient)
        ox_sd = std_of(settings, chemsys, name, window.oxidation_gradient) if ox is not None else None
        red_s, ox_s = first_order(red, red_sd), first_order(ox, ox_sd)
        if potential is not None:
            fields["p_reduction_limit_below"] = (normal_probability_below(red, red_sd, potential)
                                                 if red is not None else None)
            fields["p_oxidation_limit_above"] = (1.0 - normal_probability_below(ox, ox_sd, potential)
                                                 if ox is not None else 1.0)
    else:
        reds, oxs, red_products, ox_products, inside_low, inside_high = [], [], [], [], [], []
        for drawn, own in perturbed_systems(chemsys, settings, name, energy):
            w = electrochemical_window(drawn, comp, "Li", as_is=as_is, energy=own)
            r = w.reduction_onset if w.decomposes_at_every_potential else w.reduction_potential
            o = w.oxidation_onset if w.decomposes_at_every_potential else w.oxidation_potential
            reds.append(r)
            oxs.append(o)
            red_products.append(_outcome(w.reduction_products))
            ox_products.append(_outcome(w.oxidation_products))
            if potential is not None:
                inside_low.append(r is not None and r < potential and not w.decomposes_at_every_potential)
                inside_high.append((o is None or o > potential) and not w.decomposes_at_every_potential)
        red_s, ox_s = sample_summary(reds), sample_summary(oxs)
        outcomes = {"reduction_products_outcomes": frequencies(red_products, OUTCOME_SHARE),
                    "oxidation_products_outcomes": frequencies(ox_products, OUTCOME_SHARE)}
        if potential is not None:
            fields["p_reduction_limit_below"] = sum(inside_low) / len(inside_low)
            fields["p_oxidation_limit_above"] = sum(inside_high) / len(inside_high)
    fields.update(_fields(red_name, red_s))
    fields.update(_fields(ox_name, ox_s))
    fields.update(outcomes)
    lines = [_header(settings), _line(red_name.replace("_", " "), red, red_s, "V", 3),
             _line(ox_name.replace("_", " "), ox, ox_s, "V", 3) if ox is not None
             else "    oxidation potential: no oxidation limit (no Li to remove)"]
    if potential is not None:
        lines.append(f"    at {format_number(potential, 3)} V: probability that the reduction limit is below "
                     f"it {format_number(fields['p_reduction_limit_below'], 3)}, that the oxidation limit "
                     f"is above it {format_number(fields['p_oxidation_limit_above'], 3)}")
    for side in ("reduction", "oxidation"):
        seen = outcomes.get(f"{side}_products_outcomes", [])
        if len(seen) > 1:
            lines.append(f"    {side} products in the draws: " + "; ".join(
                f"{o['outcome']} ({format_number(100 * o['fraction'], 0)} %)" for o in seen))
    return fields, lines


def _outcome(products: dict) -> str:
    return " + ".join(sorted(products)) if products else "none"


def pair_uncertainty(settings: Settings, table, comp_a: Composition, comp_b: Composition, result,
                     potential: float | None, use_hull_energy: bool, include_no_mixing_energy: bool,
                     threshold: float) -> tuple[dict, list]:
    extra = ("Li",) if potential is not None else ()
    chemsys = system_for(table, comp_a, comp_b, extra=extra)
    best = result.most_negative
    level = min(threshold, -NO_REACTION_TOL)
    fields = {}
    kink_sds = [std_of(settings, chemsys, "", k.gradient) for k in result.kinks]
    if settings.method == "first-order":
        best_s = first_order(best.reaction_energy, std_of(settings, chemsys, "", best.gradient))
        fields["p_reacts"] = normal_probability_below(best.reaction_energy, best_s["std"], level)
    else:
        energies, outcomes = [], []
        for drawn, _ in perturbed_systems(chemsys, settings):
            r = interface_reaction(drawn, comp_a, comp_b, potential=potential, use_hull_energy=use_hull_energy,
                                   include_no_mixing_energy=include_no_mixing_energy, minimum_only=True)
            kink = r.most_negative
            energies.append(kink.reaction_energy)
            outcomes.append(_outcome(kink.products) if kink.reaction_energy < level else "no reaction")
        best_s = sample_summary(energies)
        fields["p_reacts"] = sum(e < level for e in energies) / len(energies)
        fields["products_outcomes"] = frequencies(outcomes, OUTCOME_SHARE)
    fields["reacts_below"] = level
    fields.update(_fields("min_reaction_energy", best_s))
    lines = [_header(settings),
             _line("most negative reaction energy", best.reaction_energy, best_s, result.energy_unit, 4),
             f"    probability that the pair reacts (below {format_number(level, 4)} {result.energy_unit}): "
             f"{format_number(fields['p_reacts'], 3)}"]
    if len(fields.get("products_outcomes", [])) > 0:
        lines.append("    products of the most negative mixture in the draws: " + "; ".join(
            f"{o['outcome']} ({format_number(100 * o['fraction'], 0)} %)" for o in fields["products_outcomes"]))
    return fields, lines, kink_sds


def decompose_uncertainty(settings: Settings, table, comp: Composition, results, energy) -> tuple[list, list]:
    chemsys = system_for(table, comp, extra=("Li",))
    name = comp.reduced_formula
    per_potential, lines = [], [_header(settings)]
    samples = {r.potential: [] for r in results}
    if settings.method == "monte-carlo":
        for drawn, own in perturbed_systems(chemsys, settings, name, energy):
            for r in results:
                samples[r.potential].append(
                    decomposition_at_potential(drawn, comp, r.potential, energy=own).reaction_energy)
    for r in results:
        if settings.method == "first-order":
            summary = first_order(r.reaction_energy, std_of(settings, chemsys, name, r.gradient))
            p_reacts = normal_probability_below(r.reaction_energy, summary["std"], -STABLE_TOL)
        else:
            summary = sample_summary(samples[r.potential])
            p_reacts = sum(e < 0.0 for e in samples[r.potential]) / len(samples[r.potential])
        per_potential.append({**_fields("decomposition_reaction_energy", summary), "p_reacts": p_reacts})
        lines.append(_line(f"at {format_number(r.potential, 3)} V", r.reaction_energy, summary, "eV/atom", 4)
                     + f", probability that it decomposes {format_number(p_reacts, 3)}")
    return per_potential, lines
