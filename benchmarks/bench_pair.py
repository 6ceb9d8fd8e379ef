"""Benchmark: interfacial reactions A | B, this project's engine vs pymatgen's InterfacialReactivity.

For each case both engines get exactly the same entries: the chemical system that
`screening.thermo.analysis.system_for` selects from the embedded snapshot. The comparison is
the closed system, hull energies for the reactants (pymatgen: norm=True, use_hull_energy=True).

Measured, after the entry data has been loaded once:
  ours      system_for (entry selection) + interface_reaction; median of --repeats runs
            after one untimed warm-up run.
  pymatgen  PDEntry list + PhaseDiagram + InterfacialReactivity + get_kinks; one run in a
            spawned child process (imports done before the clock starts), killed after
            --cap seconds and then reported as "> cap". The child's peak resident memory
            (VmHWM) is sampled from /proc while it runs.
Both most-negative reaction energies (eV/atom of mixture) are printed with their difference.

Run:  make bench            (= .venv/bin/python benchmarks/bench_pair.py)
      .venv/bin/python benchmarks/bench_pair.py --quick          (5 and 6 elements, cap 60 s)
      .venv/bin/python benchmarks/bench_pair.py --cap 300 --repeats 9

Progress goes to stderr; the Markdown table (paste-able into a README) goes to stdout.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from screening.chem import parse_formula
from screening.data.snapshot import load_entries
from screening.thermo.analysis import system_for
from screening.thermo.reaction import interface_reaction

NCM811 = "LiNi0.8Co0.1Mn0.1O2"


@dataclass(frozen=True)
class Case:
    a: str
    b: str
    extra: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        plus = f" (+{','.join(self.extra)})" if self.extra else ""
        return f"{self.a} \\| {self.b}{plus}"


CASES = [
    Case("LiCoO2", "Li3PS4"),
    Case("LiNbO3", "Li6PS5Cl"),
    Case("Li7La3Zr2O12", NCM811),
    Case("Li6PS5Cl", NCM811),
    Case(NCM811, "Li9.54Si1.74P1.44S11.7Cl0.3"),
    Case("LiNbO3", "Li6PS5Cl", ("Ni", "Co", "Mn")),
    Case("Li10GeP2S12", NCM811, ("Nb", "Ta")),
]
QUICK_MAX_ELEMENTS = 6


@dataclass
class Ours:
    n_elements: int
    n_entries: int
    seconds: float
    energy: float
    ratio: float
    n_kinks: int


@dataclass
class Theirs:
    status: str  # "ok", "timeout", "error: ...", "crashed"
    seconds: float | None = None
    energy: float | None = None
    ratio: float | None = None
    n_kinks: int | None = None
    peak_mb: float | None = None


# ---------------------------------------------------------------- this project

def run_ours(table, case: Case, repeats: int) -> tuple[Ours, tuple[str, ...], list[float]]:
    """Median time of system_for + interface_reaction; also returns the entries used."""
    comp_a, comp_b = parse_formula(case.a), parse_formula(case.b)

    def once():
        chemsys = system_for(table, comp_a, comp_b, extra=case.extra)
        return chemsys, interface_reaction(chemsys, comp_a, comp_b)

    chemsys, result = once()  # warm-up, and the result reported
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        once()
        times.append(time.perf_counter() - start)
    best = result.most_negative
    ours = Ours(len(chemsys.elements), chemsys.size, statistics.median(times),
                best.reaction_energy, best.mixing_ratio, len(result.kinks))
    return ours, chemsys.names, [float(e) for e in chemsys.energies]


# ---------------------------------------------------------------- pymatgen, in a child process

def pymatgen_child(conn, a: str, b: str, names, energies) -> None:
    """Child process body: signal readiness after imports, then time pymatgen end to end."""
    try:
        from pymatgen.analysis.interface_reactions import InterfacialReactivity
        from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
        from pymatgen.core import Composition
        comp_a, comp_b = parse_formula(a), parse_formula(b)
        conn.send("ready")
        start = time.perf_counter()
        entries = [PDEntry(Composition(n), e * Composition(n).num_atoms)
                   for n, e in zip(names, energies)]
        diagram = PhaseDiagram(entries)
        reactivity = InterfacialReactivity(comp_a, comp_b, diagram, norm=True, use_hull_energy=True)
        kinks = list(reactivity.get_kinks())
        best = min(kinks, key=lambda kink: kink[2])
        seconds = time.perf_counter() - start
        conn.send(("ok", seconds, float(best[2]), float(best[1]), len(kinks)))
    except Exception as exc:  # reported in the table, not raised
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM (peak resident set) of a live process, in MB; None if unavailable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return None


def run_pymatgen(case: Case, names, energies, cap: float) -> Theirs:
    """One pymatgen run in a spawned child, killed after `cap` seconds of computing."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=pymatgen_child, args=(child, case.a, case.b, names, energies))
    proc.start()
    child.close()
    peak = None
    try:
        if not parent.poll(300) or parent.recv() != "ready":
            return Theirs("crashed (no start)")
        deadline = time.monotonic() + cap
        while not parent.poll(0.2):
            peak = peak_rss_mb(proc.pid) or peak
            if not proc.is_alive():
                return Theirs("crashed", peak_mb=peak)
            if time.monotonic() > deadline:
                return Theirs("timeout", peak_mb=peak)
        peak = peak_rss_mb(proc.pid) or peak
        message = parent.recv()
    except EOFError:
        return Theirs("crashed", peak_mb=peak)
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join()
        parent.close()
    if message[0] != "ok":
        return Theirs(f"error: {message[1]}", peak_mb=peak)
    _, seconds, energy, ratio, n_kinks = message
    return Theirs("ok", seconds, energy, ratio, n_kinks, peak)


# ---------------------------------------------------------------- report

def machine_line() -> str:
    import pymatgen.core
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"Machine: {cpu}, nproc {len(os.sched_getaffinity(0))}, "
            f"Python {platform.python_version()}, pymatgen {pymatgen.core.__version__}")


def fmt_ratio(ratio: float) -> str:
    return f"{ratio:,.1f}×" if ratio < 100 else f"{ratio:,.0f}×"


def fmt_time(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def table_row(case: Case, ours: Ours, theirs: Theirs, cap: float) -> str:
    if theirs.status == "ok":
        their_time = fmt_time(theirs.seconds)
        speedup = fmt_ratio(theirs.seconds / ours.seconds)
        their_energy = f"{theirs.energy:.6f}"
        diff = f"{abs(theirs.energy - ours.energy):.1e}"
    else:
        their_time = f"> {cap:g} s" if theirs.status == "timeout" else theirs.status
        speedup = f"> {fmt_ratio(cap / ours.seconds)}" if theirs.status == "timeout" else "–"
        their_energy = diff = "–"
    memory = f"{theirs.peak_mb:,.0f} MB" if theirs.peak_mb else "–"
    cells = [case.label, str(ours.n_elements), str(ours.n_entries), fmt_time(ours.seconds),
             their_time, speedup, f"{ours.energy:.6f}", their_energy, diff, memory]
    return "| " + " | ".join(cells) + " |"


HEADER = ("| A \\| B | elements | entries | ours (median) | pymatgen | pymatgen / ours "
          "| E_min ours (eV/atom) | E_min pymatgen (eV/atom) | abs. difference | pymatgen peak RSS |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")


def notes(case: Case, ours: Ours, theirs: Theirs) -> list[str]:
    """Disagreements worth a look: energy, mixing ratio of the minimum, number of kinks."""
    if theirs.status != "ok":
        return []
    found = []
    if abs(theirs.energy - ours.energy) > 1e-6:
        found.append(f"energy differs by {abs(theirs.energy - ours.energy):.2e} eV/atom")
    if abs(theirs.ratio - ours.ratio) > 1e-6:
        found.append(f"x at the minimum: ours {ours.ratio:.6f}, pymatgen {theirs.ratio:.6f}")
    if theirs.n_kinks != ours.n_kinks:
        found.append(f"kinks: ours {ours.n_kinks}, pymatgen {theirs.n_kinks}")
    return [f"{case.a} | {case.b}: {text}" for text in found]


# ---------------------------------------------------------------- main

def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cap", type=float, default=None,
                        help="wall-clock cap per pymatgen case, s (default 120, 60 with --quick)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of ours per case (median)")
    parser.add_argument("--quick", action="store_true", help="only the 5- and 6-element cases")
    args = parser.parse_args(argv)
    if args.cap is None:
        args.cap = 60.0 if args.quick else 120.0
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    table = load_entries()  # parse / cache once, outside every timing
    rows, remarks = [], []
    for case in CASES:
        ours, names, energies = run_ours(table, case, args.repeats)
        if args.quick and ours.n_elements > QUICK_MAX_ELEMENTS:
            continue
        print(f"[{ours.n_elements} el, {ours.n_entries} entries] {case.a} | {case.b}: "
              f"ours {fmt_time(ours.seconds)}; pymatgen ...", file=sys.stderr, flush=True)
        theirs = run_pymatgen(case, names, energies, args.cap)
        print(f"    pymatgen: {theirs.status}"
              + (f", {fmt_time(theirs.seconds)}" if theirs.seconds is not None else ""),
              file=sys.stderr, flush=True)
        rows.append(table_row(case, ours, theirs, args.cap))
        remarks += notes(case, ours, theirs)
    print(HEADER)
    print("\n".join(rows))
    print()
    print(machine_line())
    print(f"ours: median of {args.repeats} runs; pymatgen: one run, cap {args.cap:g} s.")
    for remark in remarks:
        print(f"Note: {remark}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
