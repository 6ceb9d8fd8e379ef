"""The six reference coatings against NMC811 | LPSCl with error bars (Monte Carlo, 200 draws, seed 0):
window edges, and the closed reaction energies with the discharged cathode and with the electrolyte,
each as value +/- standard deviation [95 % interval] and the probability that the pair reacts below the
default screen's thresholds. Prints a Markdown table. Run: `.venv/bin/python benchmarks/reference_error_bars.py`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

COATINGS = ["LiNbO3", "Li3PO4", "LiTaO3", "Li2ZrO3", "LiAlO2", "Al2O3"]
THRESHOLDS = {"NMC811": -0.05, "LPSCl": -0.05}  # workflows/config/default.yaml rxn_electrode, rxn_electrolyte


def run(*argv: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "screening", *argv, "--uncertainty", "monte-carlo", "--json"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def edge(data: dict, key: str) -> str:
    value = data.get(key)
    if value is None:
        return "none"
    low, high = data[f"{key}_interval_95"]
    return f"{value:.2f} ± {data[f'{key}_std']:.2f} [{low:.2f}, {high:.2f}]"


def reaction(data: dict) -> str:
    low, high = data["min_reaction_energy_interval_95"]
    return (f"{data['min_reaction_energy']:.3f} ± {data['min_reaction_energy_std']:.3f} [{low:.3f}, {high:.3f}]"
            f" (p {data['p_reacts']:.2f})")


def main() -> None:
    start = time.perf_counter()
    print("| coating | reduction limit (V) | oxidation limit (V) | with NMC811 (eV/atom) | with LPSCl (eV/atom) |")
    print("|---|---|---|---|---|")
    for coating in COATINGS:
        window = run("window", coating)
        pairs = [run("pair", coating, partner, "--reacts-below", str(THRESHOLDS[partner])) for partner in THRESHOLDS]
        print(f"| {coating} | {edge(window, 'reduction_potential')} | {edge(window, 'oxidation_potential')} | "
              f"{reaction(pairs[0])} | {reaction(pairs[1])} |", flush=True)
    print(f"\n{time.perf_counter() - start:.0f} s for {3 * len(COATINGS)} commands; p: probability that the "
          "most negative reaction energy is below the default screen's threshold (-0.05 eV/atom)")


if __name__ == "__main__":
    main()
