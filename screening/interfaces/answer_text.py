"""Text of the command-line answers: numbers, phase lists, windows, the data used."""

from __future__ import annotations

from pathlib import Path


def format_number(value: float, digits: int = 3, sign: bool = False) -> str:
    """Fixed-point text that never reads -0.000 (a value that rounds to zero prints as 0)."""
    text = f"{value:{'+' if sign else ''}.{digits}f}"
    if float(text) == 0.0:
        text = f"{0.0:.{digits}f}"
    return text


def format_value(value: float | None, unit: str = "", digits: int = 3, missing: str = "not defined") -> str:
    return missing if value is None else f"{format_number(value, digits)}{unit}"


def format_phases(products: dict[str, float], digits: int = 4) -> str:
    """'4 Li2O + Li3P' in the given amounts (a coefficient of 1 omitted), 'no phases' for none."""
    if not products:
        return "no phases"
    parts = []
    for name, amount in products.items():
        coeff = (f"{amount:.{digits}g}" if abs(amount) < 1e-3
                 else f"{amount:.{digits}f}".rstrip("0").rstrip("."))
        parts.append(name if coeff == "1" else f"{coeff} {name}")
    return " + ".join(parts)


def window_lines(window, in_data: bool = True) -> list[str]:
    """The window, the phases beyond each limit and the profile, as indented lines."""
    v = lambda value: format_number(value, 3)  # noqa: E731
    if window.decomposes_at_every_potential:
        lines = [f"  window: no stable potential range: decomposes at every Li potential (at its own energy Li uptake is "
                 f"downhill below {v(window.reduction_onset)} V and Li release above "
                 f"{v(window.oxidation_onset)} V vs Li/Li+)",
                 f"  below {v(window.reduction_onset)} V (Li uptake):  {format_phases(window.reduction_products)}",
                 f"  above {v(window.oxidation_onset)} V (Li release): {format_phases(window.oxidation_products)}",
                 "  profile (per formula unit; the equilibrium phases of its composition at each potential):"]
    else:
        red, ox = window.reduction_potential, window.oxidation_potential
        if window.zero_width:
            where = ("not a phase of the data, its composition lies between ordered phases"
                     if not in_data else "lowered onto the hull, its composition lies inside a hull segment")
            lines = [f"  window: zero width at {v(red)} V vs Li/Li+: {where}, so its hull mixture "
                     f"takes up Li below {v(red)} V and gives it up above; no range of potentials is stable"]
        elif ox is None:
            lines = [f"  window: {v(red)} V vs Li/Li+ and up: no oxidation limit (no Li to remove)"]
        else:
            lines = [f"  window: {v(red)} V to {v(ox)} V vs Li/Li+"]
        if window.reduction_products:
            lines.append(f"  below the reduction limit:  {format_phases(window.reduction_products)}")
        else:
            lines.append("  below the reduction limit:  no reduction limit (stable down to 0 V, against Li metal)")
        lines.append("  above the oxidation limit:  "
                     + (format_phases(window.oxidation_products) if ox is not None
                        else "no oxidation limit (no Li to remove)"))
        lines.append("  profile (per formula unit):")
    lines.append(f"    {'V vs Li/Li+':>11}  {'Li change':>9}  phases")
    for step in window.profile:
        lines.append(f"    {v(step.potential):>11}  {format_number(step.li_change, 3, sign=True):>9}  "
                     f"{format_phases(step.products)}")
    return lines


def data_lines(table) -> list[str]:
    """Which data the answer used: the file and its digest, and every user-supplied entry by file."""
    source = table.source
    extra = source.extra or {}
    lines = [f"  data: {source.path} (sha256 {source.sha256[:12]})"]
    records = extra.get("user_compositions")
    if records is None:  # a source that does not say which user compositions it holds
        records = [{"formula": name, "used": "user", "data_energy": None}
                   for name in sorted(table.names[table.user_supplied].tolist())]
    if not records:
        return lines
    replace = extra.get("user_mode") == "replace"
    parts = []
    for record in records:
        text = str(record.get("formula"))
        if record.get("used") == "data":
            text += " (not used: the data's polymorph is lower)"
        elif record.get("data_energy") is not None:
            text += " (replaces the data's)" if replace else " (below the data's, used)"
        parts.append(text)
    files = ", ".join(Path(str(f.get("path", "?"))).name for f in extra.get("user_entries", [])) or "user files"
    noun = "entry" if len(parts) == 1 else "entries"
    lines.append(f"  +{len(parts)} user {noun}: {', '.join(parts)} from {files}")
    return lines
