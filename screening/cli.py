"""Command line: `screening stability|window|pair|decompose ...` (and the screening commands).

Bad input is reported as one line on stderr with exit status 2; no tracebacks reach the user
(set SCREENING_DEBUG=1 to see them).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import traceback
import warnings

from screening import __version__
from screening.errors import InputError, ScreeningError
from screening.safe_io import redact
from screening.interfaces.argtypes import add_uncertainty_arguments, bounded_float, bounded_int


# What argparse takes for a negative number rather than an option: also '-1e-3', '-1.4eV', '-0.5 V'
# (its own pattern is only -1 and -1.4, so `--energy -1.4eV` was "expected one argument").
_NEGATIVE_VALUE = re.compile(r"^-(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?(?: ?[A-Za-z/]+)?$")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and takes '-1.4eV' as a value."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = _NEGATIVE_VALUE

    def error(self, message: str):
        option = re.match(r"argument (--[a-z-]+): expected one argument", message)
        if option:
            message += f" (a negative value goes with '=': {option.group(1)}=-1.4)"
        raise InputError(f"{message} (see '{self.prog} --help')")


energy_value = bounded_float("formation energy", -20.0, 10.0, "eV/atom", units=("eV/atom", "eV"))
potential_value = bounded_float("potential", -5.0, 10.0, "V vs Li/Li+", units=("V",))
top_kinks = bounded_int("--top", 1, 10_000)
DEFAULT_THERMO_TYPE = "GGA_GGA+U"


class _VersionAction(argparse.Action):
    """--version: the package version and the digest of its source (which code made a result)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="print the version and the sha256 of the package's source, and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        from screening.provenance import code_digest

        print(f"screening {__version__} (code sha256 {code_digest()})")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="screening", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action=_VersionAction)
    common = _Parser(add_help=False)
    common.add_argument("--entries", metavar="PATH",
                        help="entry data: snapshot CSV(.gz) or JSON of pymatgen entries "
                             "(default: $SCREENING_ENTRIES or ../shared/data/mp_e_form_2019.csv.gz)")
    common.add_argument("--json", action="store_true", help="print JSON (a stable contract) instead of text")
    common.add_argument("--no-cache", action="store_true", help="parse the data file, do not use the cache")
    common.add_argument("--user-entries", action="append", metavar="FILE",
                        help="add or override entries: pymatgen entry JSON or vasprun.xml (repeatable)")
    common.add_argument("--user-scheme", choices=["legacy", "MP2020"],
                        help="correction scheme of the user entries (only with user entries; inferred from the "
                             "data source)")
    # --- user mode and exclusions (data layer: screening.data.sources.finish_table) ---
    common.add_argument("--user-mode", choices=["add", "replace"], default=None,
                        help="add (default): a user entry is one more polymorph, the lowest sets the hull; "
                             "replace: it replaces the data's entries of its composition")
    common.add_argument("--exclude-entries", action="append", nargs="+", metavar="FORMULA",
                        help="leave out every entry of these formulas, e.g. LiS4 (repeatable)")
    # --- end ---
    common.add_argument("--source", choices=["snapshot", "mp"], default="snapshot",
                        help="snapshot: the data file (default); mp: the Materials Project via mp-api "
                             "(needs MP_API_KEY; MP_API_ENDPOINT selects the server)")
    common.add_argument("--thermo-type", choices=["GGA_GGA+U", "GGA_GGA+U_R2SCAN"],
                        help=f"Materials Project mixing scheme (only with --source mp; default {DEFAULT_THERMO_TYPE})")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("stability", parents=[common], help="energy above hull, decomposition energy")
    p.add_argument("material", help="formula (LiNbO3, LiNi0.8Co0.1Mn0.1O2) or library name")
    p.add_argument("--energy", type=energy_value, metavar="EV_PER_ATOM",
                   help="use this formation energy (eV/atom, e.g. --energy=-1.4 or -1.4eV) for the material")
    add_uncertainty_arguments(p)

    p = sub.add_parser("window", parents=[common], help="electrochemical window vs Li/Li+")
    p.add_argument("material")
    p.add_argument("--as-is", action="store_true",
                   help="keep a metastable compound's own energy instead of lowering it onto the hull")
    p.add_argument("--energy", type=energy_value, metavar="EV_PER_ATOM")
    p.add_argument("--plot", metavar="FILE", help="write the Li uptake/release profile (PNG or SVG)")
    p.add_argument("--potential", type=potential_value, metavar="V",
                   help="with --uncertainty: the probability that each limit lies beyond this potential "
                        "(default: the material's state, e.g. NAME@charged)")
    add_uncertainty_arguments(p)

    p = sub.add_parser("pair", parents=[common], help="interfacial reaction between two materials")
    p.add_argument("a", help="first material (its atom fraction is the mixing ratio)")
    p.add_argument("b", help="second material")
    p.add_argument("--potential", type=potential_value, metavar="V",
                   help="open to Li at this potential, V vs Li/Li+ (4.3 or 4.3V; default: closed system)")
    p.add_argument("--own-energies", action="store_true",
                   help="reactants at their lowest own entry instead of their hull energy")
    p.add_argument("--mutual-only", action="store_true",
                   help="open system: count only the mutual reaction, not each reactant's own "
                        "reaction with the Li reservoir (pymatgen include_no_mixing_energy=False)")
    p.add_argument("--plot", metavar="FILE", help="write reaction energy vs mixing ratio (PNG or SVG)")
    p.add_argument("--top", type=top_kinks, metavar="N",
                   help="print only the N most negative kinks (1..10000; text only, --json keeps every kink)")
    p.add_argument("--reacts-below", type=energy_value, default=0.0, metavar="EV_PER_ATOM",
                   help="with --uncertainty: the pair reacts when its most negative reaction energy is below "
                        "this (default 0: any energy released)")
    add_uncertainty_arguments(p)

    p = sub.add_parser("decompose", parents=[common],
                       help="decomposition reaction energy open to Li at given potentials (Zhu 2015; "
                            "negative = energy released)")
    p.add_argument("material")
    p.add_argument("--potential", type=potential_value, action="append", metavar="V",
                   help="potential(s), V vs Li/Li+ (default: the material's state, else 0 and 5)")
    p.add_argument("--energy", type=energy_value, metavar="EV_PER_ATOM")
    add_uncertainty_arguments(p)

    from screening.interfaces import amorphous_cli, energy_cli, screen_cli, workflow_cli
    screen_cli.add_commands(sub, common)
    energy_cli.add_commands(sub, common)
    amorphous_cli.add_command(sub, common)
    workflow_cli.add_commands(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    if not os.environ.get("SCREENING_DEBUG"):
        warnings.filterwarnings("ignore")  # library chatter (pymatgen, dask) is not for the user
    previous = _terminate_as_interrupt()
    try:
        args = build_parser().parse_args(argv)
        if args.command is None:
            raise InputError("no command given (see 'screening --help')")
        check_options_apply(args)
        return _dispatch(args)
    except ScreeningError as exc:
        print(f"screening: error: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except Terminated:
        print("screening: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("screening: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except MemoryError:
        print("screening: error: out of memory", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug: one line unless debugging
        if os.environ.get("SCREENING_DEBUG"):
            traceback.print_exc()
        print(f"screening: internal error: {type(exc).__name__}: {redact(' '.join(str(exc).split()))[:300]} "
              "(set SCREENING_DEBUG=1 for a traceback)", file=sys.stderr)
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every `finally` runs (dask workers shut down, temporary
    files go) instead of the process dying on the spot."""


def _raise_terminated(signum, frame):
    raise Terminated()


def _terminate_as_interrupt():
    """Install the SIGTERM handler (main thread only); returns the previous handler, or None."""
    try:
        return signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread (e.g. called from a worker): leave signals alone
        return None


def check_options_apply(args) -> None:
    """Options that would be silently ignored are errors: --thermo-type without --source mp,
    --user-scheme without user entries (a screen's come from its config too, checked there)."""
    if getattr(args, "thermo_type", None) is not None and getattr(args, "source", "snapshot") != "mp":
        raise InputError("--thermo-type applies only with --source mp (the snapshot data has one scheme, "
                         f"{DEFAULT_THERMO_TYPE})")
    if hasattr(args, "thermo_type") and args.thermo_type is None:
        args.thermo_type = DEFAULT_THERMO_TYPE
    if getattr(args, "user_scheme", None) and not getattr(args, "user_entries", None) and args.command != "screen":
        raise InputError("--user-scheme applies only with --user-entries (it sets their correction scheme)")


def _dispatch(args) -> int:
    from screening.interfaces import amorphous_cli, commands, energy_cli, screen_cli, workflow_cli

    name = f"run_{args.command.replace('-', '_')}"
    module = next(m for m in (commands, screen_cli, energy_cli, workflow_cli, amorphous_cli) if hasattr(m, name))
    result = getattr(module, name)(args)
    if getattr(args, "json", False):
        print(json.dumps(result["json"], indent=2, sort_keys=False, allow_nan=False))
    else:
        print(result["text"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
