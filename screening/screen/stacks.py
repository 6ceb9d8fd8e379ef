"""Cell stacks: electrode | coating | electrolyte, on the cathode or the anode side."""

from __future__ import annotations

from dataclasses import dataclass


from screening.errors import InputError
from screening.screen.materials import Material, find_library_material, resolve_material


@dataclass(frozen=True)
class Stack:
    """A stack; potential (V vs Li/Li+) is the electrode's operating potential (top of charge for a
    cathode). The cathode meets the coating discharged (closed reaction; or in the state its spec names,
    e.g. NMC111@charged) and charged (open reaction)."""

    name: str
    side: str  # "cathode" or "anode"
    electrode: Material  # as assembled (discharged cathode; anode as is)
    electrode_charged: Material  # at the operating potential
    electrolyte: Material
    potential: float

    def as_dict(self) -> dict:
        return {"name": self.name, "side": self.side, "potential": self.potential,
                "electrode": self.electrode.as_dict(), "electrode_charged": self.electrode_charged.as_dict(),
                "electrolyte": self.electrolyte.as_dict()}


SEED_STACKS = [
    {"electrode": "NMC811", "electrolyte": "LPSCl"},
    {"electrode": "LCO", "electrolyte": "LPSCl"},
    {"electrode": "NMC811", "electrolyte": "LLZO"},
    {"electrode": "Li", "electrolyte": "LPSCl"},
    {"electrode": "Li", "electrolyte": "LLZO"},
]


def make_stack(spec: dict) -> Stack:
    """A stack from {electrode, electrolyte, [potential], [side], [name]} (library names or formulas)."""
    if not isinstance(spec, dict) or "electrode" not in spec or "electrolyte" not in spec:
        raise InputError(f"a stack needs 'electrode' and 'electrolyte': {spec!r}")
    unknown = set(spec) - {"electrode", "electrolyte", "potential", "side", "name"}
    if unknown:
        raise InputError(f"unknown stack key {sorted(unknown)[0]!r} in {spec!r}")
    electrode = resolve_material(str(spec["electrode"]))
    electrolyte = resolve_material(str(spec["electrolyte"]))
    entry = find_library_material(str(spec["electrode"]).split("@")[0])
    side = spec.get("side") or (entry.role if entry and entry.role in ("cathode", "anode") else None)
    if side not in ("cathode", "anode"):
        raise InputError(f"stack electrode {spec['electrode']!r}: say side: cathode or anode")
    potential = spec.get("potential")
    if potential is None:
        potential = electrode.potential if electrode.potential is not None else electrode.operating_potential
    if potential is None:
        raise InputError(f"stack electrode {spec['electrode']!r} has no operating potential: give potential")
    try:
        if isinstance(potential, bool):
            raise TypeError
        potential = float(potential)
    except (TypeError, ValueError):
        raise InputError(f"stack potential must be a number, got {spec.get('potential')!r}") from None
    if not -5.0 <= potential <= 10.0:
        raise InputError(f"stack potential {potential} V vs Li/Li+ is outside -5..10 V")
    charged = electrode
    if side == "cathode" and entry is not None and entry.charged:
        charged = resolve_material(f"{entry.name}@{potential:g}V")
        if "@" not in str(spec["electrode"]):  # "NMC111@charged": the closed reaction is with that state
            electrode = resolve_material(entry.name)
    if spec.get("name") is not None and not isinstance(spec["name"], str):
        raise InputError(f"stack name must be text, got {spec['name']!r}")
    name = spec.get("name") or f"{electrode.label}|{electrolyte.label}"
    if electrode.composition.reduced_composition == electrolyte.composition.reduced_composition:
        raise InputError(f"stack {name}: electrode and electrolyte are the same composition")
    return Stack(str(name), side, electrode, charged, electrolyte, potential)

