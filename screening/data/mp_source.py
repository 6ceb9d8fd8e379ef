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

from screening.data.snapshot import atomic_write_bytes, cache_dir
from screening.data.table import DataSource, EntryTable
from screening.errors import DataError, InputError

ENV_KEY = "MP_API_KEY"
ENV_ENDPOINT = "MP_API_ENDPOINT"  # the variable mp-api's MPRester reads
ENV_BACKOFF = "SCREENING_MP_BACKOFF"  # seconds; backoff factor between retries
DEFAULT_ENDPOINT = "https://api.materialsproject.org/"
THERMO_TYPES = ("GGA_GGA+U", "GGA_GGA+U_R2SCAN")
MAX_ELEMENTS = 9  # mp-api refuses larger systems (2^9 - 1 subsystems already fill the URL)
DEFAULT_BACKOFF = 0.5
MAX_RETRY_AFTER = 60.0  # never wait longer than this on a server's Retry-After
RETRY_STATUSES = (429, 500, 502, 503, 504)
CACHE_FORMAT = 1
SNAPSHOT_HINT = "drop --source mp to use the embedded snapshot instead"
_DESCRIPTIONS = {
    "GGA_GGA+U": "Materials Project GGA/GGA+U entries with MaterialsProject2020 corrections",
    "GGA_GGA+U_R2SCAN": "Materials Project GGA/GGA+U (MP2020) and r2SCAN entries, "
                        "mixed with MaterialsProjectDFTMixingScheme",
}


def load_mp_entries(elements: Iterable[str], api_key: str | None = None,
                    endpoint: str | None = None, thermo_type: str = "GGA_GGA+U",
                    use_cache: bool = True, timeout: float = 30, retries: int = 3,
                    *, backoff: float | None = None) -> EntryTable:
    """Formation-energy entries of the chemical system spanned by `elements`, subsystems included.

    api_key: else $MP_API_KEY. endpoint: else $MP_API_ENDPOINT, else the public API.
    thermo_type: "GGA_GGA+U" (default) or "GGA_GGA+U_R2SCAN".
    timeout: seconds per HTTP request; retries: retries per request after the first attempt, on
    connection errors, timeouts, HTTP 429 (honouring Retry-After, at most MAX_RETRY_AFTER s) and
    HTTP 5xx, with exponential backoff (factor `backoff`, else $SCREENING_MP_BACKOFF, else 0.5 s).
    Each system is cached once under cache_dir()/mp, keyed by database version and thermo type;
    a cached superset serves its subsets.

    Raises InputError for bad elements or thermo type, DataError (one line) for a missing key, an
    unreachable or failing server, an invalid answer, or a system without entries.
    """
    elements = _normalise_elements(elements)
    with _Client(api_key, endpoint, thermo_type, use_cache, timeout, retries, backoff) as client:
        system = client.system(elements)
    return EntryTable.from_compositions(system.rows, system.source(client))


def mp_table_for(items: Iterable, api_key: str | None = None, endpoint: str | None = None,
                 thermo_type: str = "GGA_GGA+U", use_cache: bool = True, timeout: float = 30,
                 retries: int = 3, *, backoff: float | None = None) -> EntryTable:
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
            raise InputError(f"not a formula or element: {item!r}") from None
        systems.append(frozenset(_normalise_elements(str(el) for el in comp.elements)))
    if not systems:
        raise InputError("no composition given to fetch from the Materials Project")
    maximal = sorted({s for s in systems if not any(s < other for other in systems)},
                     key=lambda s: (-len(s), sorted(s)))
    with _Client(api_key, endpoint, thermo_type, use_cache, timeout, retries, backoff) as client:
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
    source = DataSource(kind="materials-project", path=client.endpoint, sha256=digest,
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
            raise InputError(f"not a chemical element: {symbol!r}")
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


def _one_line(text: str, limit: int = 240) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


# -- HTTP session -------------------------------------------------------------------------------

def _make_session(api_key: str, timeout: float, retries: int, backoff: float):
    """A requests session with a fixed timeout and urllib3 retries, handed to MPRester as well.

    mp-api's own session retries only 429/502/504 with at most 3 retries and 0.1 s backoff, and
    takes its timeout from each rester (20 s); this one applies the caller's settings everywhere.
    """
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    class CappedRetry(Retry):
        def get_retry_after(self, response):
            seconds = super().get_retry_after(response)
            return None if seconds is None else min(seconds, MAX_RETRY_AFTER)

    class TimeoutSession(requests.Session):
        def request(self, method, url, **kwargs):
            kwargs["timeout"] = timeout
            return super().request(method, url, **kwargs)

    retry = CappedRetry(total=retries, connect=retries, read=retries, status=retries,
                        other=retries, status_forcelist=RETRY_STATUSES,
                        allowed_methods=frozenset({"GET", "HEAD"}), backoff_factor=backoff,
                        respect_retry_after_header=True, raise_on_status=True)
    session = TimeoutSession()
    session.headers.update({"x-api-key": api_key, "accept": "application/json",
                            "user-agent": "screening (mp-api client)"})
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _causes(exc: BaseException):
    """exc and everything it wraps: __cause__/__context__, requests' args, urllib3's .reason."""
    todo, seen = [exc], set()
    while todo:
        err = todo.pop(0)
        if err is None or id(err) in seen:
            continue
        seen.add(id(err))
        yield err
        todo += [err.__cause__, err.__context__, getattr(err, "reason", None)]
        todo += [a for a in getattr(err, "args", ()) if isinstance(a, BaseException)]


def _explain(exc: BaseException, endpoint: str, timeout: float, retries: int, what: str) -> str:
    """One line for a failed request (after urllib3's retries), for a DataError."""
    import requests
    import urllib3.exceptions as u3

    chain = list(_causes(exc))
    attempts = f"{retries + 1} attempt{'s' if retries else ''}"
    text = " ".join(str(e) for e in chain)
    refused = [e for e in chain if isinstance(e, (u3.NewConnectionError, u3.NameResolutionError,
                                                  ConnectionRefusedError))]
    if refused:  # (urllib3's NewConnectionError is also a ConnectTimeoutError)
        return (f"cannot reach the Materials Project at {endpoint} ({_one_line(refused[-1], 120)}); "
                f"check the network or ${ENV_ENDPOINT}, or {SNAPSHOT_HINT}")
    if any(isinstance(e, (requests.Timeout, u3.TimeoutError, TimeoutError)) for e in chain) \
            or "timed out" in text:
        return (f"the Materials Project at {endpoint} did not answer within {timeout:g} s "
                f"({attempts}) when asked for {what}; try again later, or {SNAPSHOT_HINT}")
    match = re.search(r"too many (\d{3}) error responses", text)
    if match:
        code = int(match.group(1))
        why = "kept rate-limiting (HTTP 429)" if code == 429 else f"kept failing with HTTP {code}"
        return (f"the Materials Project at {endpoint} {why} when asked for {what} ({attempts}); "
                f"try again later, or {SNAPSHOT_HINT}")
    if any(isinstance(e, json.JSONDecodeError) or type(e).__name__ == "JSONDecodeError"
           for e in chain):
        return (f"the Materials Project at {endpoint} sent a truncated or invalid JSON answer "
                f"when asked for {what}; try again, or {SNAPSHOT_HINT}")
    match = re.search(r"error status code (\d{3})", text)
    if match:
        code = int(match.group(1))
        if code in (401, 403):
            return (f"the Materials Project at {endpoint} refused the API key (HTTP {code}): "
                    f"check ${ENV_KEY}, or {SNAPSHOT_HINT}")
        detail = _one_line(text.split("with message:", 1)[-1], 120)
        return (f"the Materials Project at {endpoint} answered HTTP {code} when asked for "
                f"{what}: {detail}; {SNAPSHOT_HINT}")
    if any(isinstance(e, (requests.ConnectionError, u3.HTTPError, ConnectionError, OSError))
           for e in chain):
        reason = next((e for e in reversed(chain)
                       if isinstance(e, (OSError, u3.ProtocolError, u3.NewConnectionError))), exc)
        return (f"cannot reach the Materials Project at {endpoint} ({_one_line(reason, 120)}); "
                f"check the network or ${ENV_ENDPOINT}, or {SNAPSHOT_HINT}")
    return (f"unexpected answer from the Materials Project at {endpoint} when asked for {what}: "
            f"{type(exc).__name__}: {_one_line(exc, 160)}; {SNAPSHOT_HINT}")


# -- the client: heartbeat, cache, fetch ---------------------------------------------------------

@dataclass
class _System:
    """The entries of one chemical system, as formation energies."""

    chemsys: str
    rows: list  # (Composition, formation energy eV/atom)
    ids: list  # entry ids, parallel to rows
    sha256: str  # of the cached payload they came from

    def source(self, client: "_Client") -> DataSource:
        return DataSource(kind="materials-project", path=client.endpoint, sha256=self.sha256,
                          description=_description(client.thermo_type, client.db_version),
                          extra={"database_version": client.db_version,
                                 "thermo_type": client.thermo_type, "chemsys": self.chemsys})


class _Client:
    def __init__(self, api_key, endpoint, thermo_type, use_cache, timeout, retries, backoff):
        if thermo_type not in THERMO_TYPES:
            raise InputError(f"unknown thermo type {thermo_type!r}: use one of {', '.join(THERMO_TYPES)}")
        key = (api_key or os.environ.get(ENV_KEY) or "").strip()
        if not key:
            raise DataError(f"no {ENV_KEY} is set: export {ENV_KEY}=<your Materials Project API key> "
                            f"(from https://materialsproject.org/api), or {SNAPSHOT_HINT}")
        if len(key) != 32:
            raise DataError(f"{ENV_KEY} is not a Materials Project API key (those have 32 "
                            f"characters, this one {len(key)}); {SNAPSHOT_HINT}")
        endpoint = (endpoint or os.environ.get(ENV_ENDPOINT) or DEFAULT_ENDPOINT).strip()
        if not re.match(r"^https?://[^/\s]+", endpoint):
            raise InputError(f"not an http(s) URL for the Materials Project endpoint: {endpoint!r}")
        if not math.isfinite(timeout) or timeout <= 0:
            raise InputError(f"timeout must be a positive number of seconds, not {timeout!r}")
        if retries < 0:
            raise InputError(f"retries must be 0 or more, not {retries!r}")
        if backoff is None:
            try:
                backoff = float(os.environ.get(ENV_BACKOFF, DEFAULT_BACKOFF))
            except ValueError:
                raise InputError(f"${ENV_BACKOFF} must be a number of seconds") from None
        self.key = key
        self.endpoint = endpoint if endpoint.endswith("/") else endpoint + "/"
        self.thermo_type = thermo_type
        self.use_cache = use_cache
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.session = _make_session(key, self.timeout, self.retries, max(0.0, backoff))
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
            raise DataError(_explain(exc, self.endpoint, self.timeout, self.retries, what)) from exc
        if response.status_code != 200:
            raise DataError(f"the Materials Project at {self.endpoint} answered HTTP "
                            f"{response.status_code} when asked for {what}: is it a Materials "
                            f"Project API endpoint (${ENV_ENDPOINT})? Or {SNAPSHOT_HINT}")
        try:
            version = response.json()["db_version"]
        except Exception as exc:
            raise DataError(_explain(exc, self.endpoint, self.timeout, self.retries, what)) from exc
        if not isinstance(version, str) or not version.strip():
            raise DataError(f"the Materials Project at {self.endpoint} reported no database "
                            f"version; {SNAPSHOT_HINT}")
        return version.strip()

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
                    and payload.get("endpoint") == self.endpoint
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
            raise DataError(_explain(exc, self.endpoint, self.timeout, self.retries, what)) from exc
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
        return {"format": CACHE_FORMAT, "endpoint": self.endpoint,
                "database_version": self.db_version, "thermo_type": self.thermo_type,
                "chemsys": chemsys, "entries": items}

    def _fetch_entries(self, elements: tuple[str, ...]) -> list:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # mp-api warns about defaults we set explicitly
            if self._rester is None:
                from mp_api.client import MPRester

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
                                f"{_chemsys(elements)}: {_one_line(exc, 160)}; use the default "
                                f"thermo type GGA_GGA+U, or {SNAPSHOT_HINT}") from exc
