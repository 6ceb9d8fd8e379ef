"""Entries from the Materials Project through mp-api's MPRester, cached on disk per chemical system.

What is fetched (as of mp-api 0.46):

* "GGA_GGA+U" (default): ``MPRester.get_entries_in_chemsys(elements,
  additional_criteria={"thermo_types": ["GGA_GGA+U"]})``, i.e. one
  ``GET {endpoint}materials/thermo/?chemsys=<all subsystems>&thermo_types=GGA_GGA%2BU
  &_fields=entries,thermo_type&_limit=1000`` (paged with ``_skip`` beyond 1000 documents).
  Energies are the entries' corrected energies (GGA/GGA+U mixed with MaterialsProject2020
  corrections), which are on one scale across all subsystems.
* "GGA_GGA+U_R2SCAN": the GGA_GGA+U and the R2SCAN entries of all subsystems (two such requests,
  through ``MPRester.get_entries``), mixed here with pymatgen's MaterialsProjectDFTMixingScheme
  over the whole requested system. This is mp-api's own fallback for this thermo type; its
  default path instead reads MP's pre-built phase diagram from a Delta table on AWS S3, which
  ignores the endpoint and cannot be served by a local server. Energies can differ slightly from
  the MP website's.

Before that, ``GET {endpoint}heartbeat`` gives the database version, which keys the cache: a cached
system is served without any further request (and without importing mp-api, which is slow).

Every request goes through the guarded session of screening/data/mp_http.py (same origin only, a
deadline per attempt, a size cap per answer); the key and any user:password of the endpoint are
never shown: messages, provenance and the cache name the endpoint without its user info.

Formation energies (eV/atom) are energy_per_atom minus the composition-weighted energies of the
lowest elemental entry of each element, so elements are at 0 as the thermo code needs.
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import math
import os
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pymatgen.core import Composition, Element

from screening.data import mp_http
from screening.data.mp_http import ENV_ENDPOINT, ENV_KEY, SNAPSHOT_HINT, one_line
from screening.data.snapshot import atomic_write_bytes, cache_dir
from screening.data.table import DataSource, EntryTable
from screening.errors import DataError, InputError
from screening.safe_io import quote, redact, redact_url, register_secret

ENV_BACKOFF = "SCREENING_MP_BACKOFF"  # seconds; backoff factor between retries
DEFAULT_ENDPOINT = "https://api.materialsproject.org/"
THERMO_TYPES = ("GGA_GGA+U", "GGA_GGA+U_R2SCAN")
MAX_ELEMENTS = 9  # mp-api refuses larger systems (2^9 - 1 subsystems already fill the URL)
DEFAULT_BACKOFF = 0.5
MAX_BACKOFF = 60.0
MAX_RETRIES = 10
CACHE_FORMAT = 1
_DESCRIPTIONS = {
    "GGA_GGA+U": "Materials Project GGA/GGA+U entries with MaterialsProject2020 corrections",
    "GGA_GGA+U_R2SCAN": "Materials Project GGA/GGA+U (MP2020) and r2SCAN entries, "
                        "mixed with MaterialsProjectDFTMixingScheme",
}


def load_mp_entries(elements: Iterable[str], api_key: str | None = None,
                    endpoint: str | None = None, thermo_type: str = "GGA_GGA+U",
                    use_cache: bool = True, timeout: float | None = None, retries: int = 3,
                    *, backoff: float | None = None,
                    max_response_bytes: int | None = None) -> EntryTable:
    """Formation-energy entries of the chemical system spanned by `elements`, subsystems included.

    api_key: else $MP_API_KEY. endpoint: else $MP_API_ENDPOINT, else the public API.
    thermo_type: "GGA_GGA+U" (default) or "GGA_GGA+U_R2SCAN".
    timeout: seconds for each attempt at a request, connection to last byte (else
    $SCREENING_MP_TIMEOUT, else 30); retries: retries per request after the first attempt, on
    connection errors, timeouts, HTTP 429 (honouring Retry-After, at most MAX_RETRY_AFTER s) and
    HTTP 5xx, with exponential backoff (factor `backoff`, else $SCREENING_MP_BACKOFF, else 0.5 s).
    max_response_bytes: the largest answer read (else $SCREENING_MP_MAX_RESPONSE_BYTES, else 128 MiB).
    Only the endpoint's origin ever receives the key: a redirect elsewhere is refused.
    Each system is cached once under cache_dir()/mp, keyed by database version and thermo type;
    a cached superset serves its subsets.

    Raises InputError for bad elements or thermo type, DataError (one line) for a missing key, an
    unreachable or failing server, an invalid answer, or a system without entries.
    """
    elements = _normalise_elements(elements)
    with _Client(api_key, endpoint, thermo_type, use_cache, timeout, retries, backoff,
                 max_response_bytes) as client:
        system = client.system(elements)
    return EntryTable.from_compositions(system.rows, system.source(client))


def mp_table_for(items: Iterable, api_key: str | None = None, endpoint: str | None = None,
                 thermo_type: str = "GGA_GGA+U", use_cache: bool = True, timeout: float | None = None,
                 retries: int = 3, *, backoff: float | None = None,
                 max_response_bytes: int | None = None) -> EntryTable:
    """One table for several compositions (formulas, Composition objects or element symbols).

    Fetches (or reads from the cache) each maximal chemical system among the items once, e.g.
    ["Li3PO4", "Li6PS5Cl", "LiPO3"] -> Li-O-P and Cl-Li-P-S, not the 5-element union. Entries
    shared by several systems are kept once. With "GGA_GGA+U" all systems share one energy scale;
    with the r2SCAN mixing each system is mixed on its own, so prefer one call per system there.
    """
    systems: list[frozenset[str]] = []
    for item in items:
        try:
            comp = item if isinstance(item, Composition) else Composition(str(item))
        except Exception:
            raise InputError(f"not a formula or element: {quote(item)}") from None
        systems.append(frozenset(_normalise_elements(str(el) for el in comp.elements)))
    if not systems:
        raise InputError("no composition given to fetch from the Materials Project")
    maximal = sorted({s for s in systems if not any(s < other for other in systems)},
                     key=lambda s: (-len(s), sorted(s)))
    with _Client(api_key, endpoint, thermo_type, use_cache, timeout, retries, backoff,
                 max_response_bytes) as client:
        loaded = [client.system(tuple(sorted(s))) for s in maximal]
    if len(loaded) == 1:
        return EntryTable.from_compositions(loaded[0].rows, loaded[0].source(client))
    rows, seen = [], set()
    for system in loaded:
        for row, entry_id in zip(system.rows, system.ids):
            key = (entry_id, row[0].formula, row[1])  # ids alone may be missing
            if key not in seen:
                seen.add(key)
                rows.append(row)
    digest = hashlib.sha256("\n".join(sorted(s.sha256 for s in loaded)).encode()).hexdigest()
    source = DataSource(kind="materials-project", path=client.shown_endpoint, sha256=digest,
                        description=_description(thermo_type, client.db_version),
                        extra={"database_version": client.db_version, "thermo_type": thermo_type,
                               "chemsys": ",".join(s.chemsys for s in loaded)})
    return EntryTable.from_compositions(rows, source)


# -- inputs -------------------------------------------------------------------------------------

def _normalise_elements(elements: Iterable[str]) -> tuple[str, ...]:
    if isinstance(elements, str):
        elements = elements.replace(",", "-").split("-")
    found = set()
    for raw in elements:
        symbol = str(raw).strip()
        if not symbol:
            continue
        if not Element.is_valid_symbol(symbol):
            raise InputError(f"not a chemical element: {quote(symbol)}")
        found.add(symbol)
    if not found:
        raise InputError("no element given to fetch from the Materials Project")
    if len(found) > MAX_ELEMENTS:
        raise InputError(f"the Materials Project source fetches at most {MAX_ELEMENTS} elements at "
                         f"once; {'-'.join(sorted(found))} has {len(found)}")
    return tuple(sorted(found))


def _chemsys(elements: Iterable[str]) -> str:
    return "-".join(sorted(elements))


def _description(thermo_type: str, db_version: str) -> str:
    return f"{_DESCRIPTIONS[thermo_type]}, database version {db_version}, via mp-api"


# -- the client: heartbeat, cache, fetch ---------------------------------------------------------

@dataclass
class _System:
    """The entries of one chemical system, as formation energies."""

    chemsys: str
    rows: list  # (Composition, formation energy eV/atom)
    ids: list  # entry ids, parallel to rows
    sha256: str  # of the cached payload they came from

    def source(self, client: "_Client") -> DataSource:
        return DataSource(kind="materials-project", path=client.shown_endpoint, sha256=self.sha256,
                          description=_description(client.thermo_type, client.db_version),
                          extra={"database_version": client.db_version,
                                 "thermo_type": client.thermo_type, "chemsys": self.chemsys})


class _Client:
    """One session with the endpoint: its database version, the cache, fetching.

    `endpoint` is what requests are sent to (user info included, if any); `shown_endpoint` is the
    same without user info, for messages, provenance and the cache."""

    def __init__(self, api_key, endpoint, thermo_type, use_cache, timeout, retries, backoff,
                 max_response_bytes=None):
        if thermo_type not in THERMO_TYPES:
            raise InputError(f"unknown thermo type {quote(thermo_type)}: use one of {', '.join(THERMO_TYPES)}")
        key = (api_key or os.environ.get(ENV_KEY) or "").strip()
        if not key:
            raise DataError(f"no {ENV_KEY} is set: export {ENV_KEY}=<your Materials Project API key> "
                            f"(from https://materialsproject.org/api), or {SNAPSHOT_HINT}")
        register_secret(key)
        mp_http.check_key(key)
        endpoint = (endpoint or os.environ.get(ENV_ENDPOINT) or DEFAULT_ENDPOINT).strip()
        _register_user_info(endpoint)
        self.endpoint = mp_http.check_endpoint(endpoint)
        self.shown_endpoint = redact(redact_url(self.endpoint))
        self.timeout = mp_http.timeout_setting(timeout)
        max_response_bytes = mp_http.max_response_setting(max_response_bytes)
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= MAX_RETRIES:
            raise InputError(f"retries must be a whole number from 0 to {MAX_RETRIES}, not {quote(retries)}")
        if backoff is None:
            text = os.environ.get(ENV_BACKOFF, "").strip() or str(DEFAULT_BACKOFF)
            try:
                backoff = float(text)
            except ValueError:
                raise InputError(f"${ENV_BACKOFF} must be a number of seconds, not {quote(text)}") from None
        if not (math.isfinite(backoff) and 0 <= backoff <= MAX_BACKOFF):
            raise InputError(f"the retry backoff must be from 0 to {MAX_BACKOFF:g} s, not {quote(backoff)}")
        self.key = key
        self.thermo_type = thermo_type
        self.use_cache = use_cache
        self.retries = retries
        self.session = mp_http.make_session(key, self.endpoint, self.timeout, self.retries, backoff,
                                            max_response_bytes)
        self._rester = None
        try:
            self.db_version = self._heartbeat()
        except BaseException:
            self.session.close()
            raise

    def __enter__(self) -> "_Client":
        return self

    def __exit__(self, *exc) -> None:
        self.session.close()

    # heartbeat: the database version, and a quick check that the endpoint answers at all
    def _heartbeat(self) -> str:
        what = "its heartbeat (database version)"
        try:
            response = self.session.get(self.endpoint + "heartbeat")
        except Exception as exc:
            raise DataError(self._explain(exc, what)) from exc
        if response.status_code != 200:
            raise DataError(f"the Materials Project at {self.shown_endpoint} answered HTTP "
                            f"{response.status_code} when asked for {what}: is it a Materials "
                            f"Project API endpoint (${ENV_ENDPOINT})? Or {SNAPSHOT_HINT}")
        try:
            answer = response.json()
            version = answer["db_version"]
        except Exception as exc:
            raise DataError(self._explain(exc, what)) from exc
        if not isinstance(version, str) or not version.strip() or len(version) > 64:
            raise DataError(f"the Materials Project at {self.shown_endpoint} reported no database "
                            f"version; {SNAPSHOT_HINT}")
        self._heartbeat_answer = answer
        return version.strip()

    def _explain(self, exc: BaseException, what: str) -> str:
        return mp_http.explain(exc, self.shown_endpoint, self.timeout, self.retries, what)

    # cache --------------------------------------------------------------------------------------
    @property
    def _folder(self) -> Path:
        return cache_dir() / "mp"

    def _prefix(self) -> str:
        safe = lambda s: re.sub(r"[^A-Za-z0-9.+_]", "_", s)  # no "-": chemsys follows
        return f"mp-{safe(self.db_version)}-{safe(self.thermo_type)}-"

    def cache_file(self, elements) -> Path:
        return self._folder / f"{self._prefix()}{_chemsys(elements)}.json.gz"

    def _cached(self, elements) -> tuple[dict, str] | None:
        """The payload (and its sha256) of a valid cached system containing `elements`."""
        wanted = set(elements)
        exact = self.cache_file(elements)
        candidates = [exact]
        try:
            names = os.listdir(self._folder)
        except OSError:
            names = []
        prefix, suffix = self._prefix(), ".json.gz"
        supersets = []
        for name in names:
            if name.startswith(prefix) and name.endswith(suffix) and name != exact.name:
                system = set(name[len(prefix):-len(suffix)].split("-"))
                if wanted < system:
                    supersets.append((len(system), name))
        candidates += [self._folder / name for _, name in sorted(supersets)]
        for path in candidates:
            found = self._read_payload(path)
            if found is not None:
                return found
        return None

    def _read_payload(self, path: Path) -> tuple[dict, str] | None:
        """The payload of a cache file, or None if absent or not exactly what it should be."""
        try:
            raw = path.read_bytes()
            payload = json.loads(gzip.decompress(raw))
            chemsys = path.name[len(self._prefix()):-len(".json.gz")]
            if not (isinstance(payload, dict) and payload.get("format") == CACHE_FORMAT
                    and payload.get("database_version") == self.db_version
                    and payload.get("thermo_type") == self.thermo_type
                    and payload.get("endpoint") == self.shown_endpoint
                    and payload.get("chemsys") == chemsys):
                return None
            allowed = set(chemsys.split("-"))
            for item in payload["entries"]:
                comp, energy = item["composition"], item["energy_per_atom"]
                if not (isinstance(item["id"], str) and isinstance(comp, dict) and comp
                        and set(comp) <= allowed and isinstance(energy, (int, float))
                        and math.isfinite(energy)
                        and all(isinstance(a, (int, float)) and math.isfinite(a) and a > 0
                                for a in comp.values())):
                    return None
            return payload, hashlib.sha256(raw).hexdigest()
        except Exception:
            return None  # missing, truncated, corrupt: refetch, never trust

    # fetch --------------------------------------------------------------------------------------
    def system(self, elements: tuple[str, ...]) -> _System:
        found = self._cached(elements) if self.use_cache else None
        if found is not None:
            return self._formation_energies(*found, elements)
        payload = self._fetch(elements)
        raw = gzip.compress(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode(),
                            mtime=0)
        system = self._formation_energies(payload, hashlib.sha256(raw).hexdigest(), elements)
        if self.use_cache:  # only data that made a table is cached
            try:
                atomic_write_bytes(self.cache_file(elements), raw)
            except OSError:
                pass  # an unwritable cache folder only costs time
        return system

    def _formation_energies(self, payload: dict, sha: str, elements) -> _System:
        chemsys = _chemsys(elements)
        allowed = set(elements)
        items = [item for item in payload["entries"] if set(item["composition"]) <= allowed]
        if not items:
            raise DataError(f"the Materials Project ({self.thermo_type}, database "
                            f"{self.db_version}) has no entries for the chemical system {chemsys}")
        refs: dict[str, float] = {}
        for item in items:
            if len(item["composition"]) == 1:
                (el,) = item["composition"]
                refs[el] = min(refs.get(el, math.inf), float(item["energy_per_atom"]))
        missing = [el for el in elements if el not in refs]
        if missing:
            raise DataError(f"the Materials Project ({self.thermo_type}, database "
                            f"{self.db_version}) has no entry for the element {missing[0]} "
                            f"in {chemsys}: cannot compute formation energies")
        rows, ids = [], []
        for item in items:
            comp = Composition(item["composition"])
            total = comp.num_atoms
            reference = sum(amt / total * refs[el]
                            for el, amt in sorted(item["composition"].items()))
            rows.append((comp, float(item["energy_per_atom"]) - reference))
            ids.append(item["id"])
        return _System(chemsys, rows, ids, sha)

    def _fetch(self, elements: tuple[str, ...]) -> dict:
        chemsys = _chemsys(elements)
        what = f"the {self.thermo_type} entries of {chemsys}"
        try:
            entries = self._fetch_entries(elements)
        except DataError:
            raise
        except Exception as exc:
            raise DataError(self._explain(exc, what)) from exc
        items = []
        for entry in entries:
            comp = {str(el): float(amt) for el, amt in sorted(entry.composition.items()) if amt > 0}
            energy = float(entry.energy_per_atom)
            if not comp or not set(comp) <= set(elements):
                continue
            if not math.isfinite(energy):
                raise DataError(f"the Materials Project sent a non-finite energy for "
                                f"{entry.composition.reduced_formula} in {chemsys}")
            data = getattr(entry, "data", None) or {}
            entry_id = str(entry.entry_id or data.get("material_id") or "")
            items.append({"id": entry_id, "composition": comp, "energy_per_atom": energy})
        if not items:
            raise DataError(f"the Materials Project ({self.thermo_type}, database "
                            f"{self.db_version}) has no entries for the chemical system {chemsys}")
        items.sort(key=lambda item: (item["id"], sorted(item["composition"].items()),
                                     item["energy_per_atom"]))
        return {"format": CACHE_FORMAT, "endpoint": self.shown_endpoint,
                "database_version": self.db_version, "thermo_type": self.thermo_type,
                "chemsys": chemsys, "entries": items}

    def _fetch_entries(self, elements: tuple[str, ...]) -> list:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # mp-api warns about defaults we set explicitly
            if self._rester is None:
                from mp_api.client import MPRester

                mp_http.serve_mp_api_heartbeat(self.endpoint, self._heartbeat_answer)
                # use_document_model=False: plain dicts, no ThermoDoc model per document (get_entries
                # still validates every entry); halves the time for large systems
                self._rester = MPRester(api_key=self.key, endpoint=self.endpoint,
                                        session=self.session, mute_progress_bars=True,
                                        use_document_model=False)
            mpr = self._rester
            if self.thermo_type == "GGA_GGA+U":
                return mpr.get_entries_in_chemsys(
                    list(elements), additional_criteria={"thermo_types": ["GGA_GGA+U"]})
            systems = ["-".join(combo) for n in range(1, len(elements) + 1)
                       for combo in itertools.combinations(sorted(elements), n)]
            unmixed = [entry for thermo_type in ("GGA_GGA+U", "R2SCAN")
                       for entry in mpr.get_entries(
                           systems, additional_criteria={"thermo_types": [thermo_type]})]
            if not unmixed:
                return []
            try:
                from pymatgen.analysis.compatibility.mixing_scheme import \
                    MaterialsProjectDFTMixingScheme
            except ImportError:  # older pymatgen
                from pymatgen.entries.mixing_scheme import MaterialsProjectDFTMixingScheme
            try:
                return MaterialsProjectDFTMixingScheme().process_entries(unmixed)
            except Exception as exc:
                raise DataError(f"cannot mix the GGA/GGA+U and r2SCAN entries of "
                                f"{_chemsys(elements)}: {one_line(exc, 160)}; use the default "
                                f"thermo type GGA_GGA+U, or {SNAPSHOT_HINT}") from exc


def _register_user_info(endpoint: str) -> None:
    """Treat the password (and user:password) of an endpoint URL as secrets that no text may show."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(endpoint)
        user, password = parts.username, parts.password
    except ValueError:
        return
    if password:
        register_secret(password)
        register_secret(f"{user or ''}:{password}")
