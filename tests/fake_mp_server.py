"""A local stand-in for the Materials Project API, for testing the `--source mp` data path.

It answers the two endpoints that `mp_api.client.MPRester` calls when our loader fetches a chemical
system (see screening/data/mp_source.py):

* ``GET /heartbeat`` -> ``{"db_version", "version", "access_controlled_batch_ids"}``
* ``GET /materials/thermo/?chemsys=Li,O,Li-O,...&thermo_types=GGA_GGA%2BU&_fields=entries,thermo_type
  &_limit=1000[&_skip=N]`` -> ``{"data": [ThermoDoc, ...], "meta": {"total_doc": N, ...}}``

The thermo documents have the JSON shape of emmet's ``ThermoDoc`` (tests check that the client's
document model parses them); their entries are real pymatgen ComputedStructureEntry dicts, which
``MPRester.get_entries`` validates. They are made from snapshot formation energies: energy per
atom = formation energy + made-up elemental reference energies (GGA and r2SCAN scales differ),
with a made-up correction so that corrected and uncorrected energies differ.

Faults are served on demand (`add_fault`): an HTTP status (429 with Retry-After, 500, ...), a
delay past the client's timeout, a truncated JSON body, an empty result, or a dropped connection;
and hostile answers: a redirect (to another server), an answer dripping one byte at a time, an
endless chunked body, a huge body. Every request is recorded (with its headers) so tests can count
them and check what each server received.
"""

from __future__ import annotations

import functools
import json
import math
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from pymatgen.core import Composition, Lattice, Structure

DB_VERSION = "2025.09.25"
EMMET_VERSION = "0.87.3"

# Made-up elemental reference energies (eV/atom): GGA(+U) and r2SCAN scales differ on purpose.
MU_GGA = {"Li": -1.909, "O": -4.948, "P": -5.413, "S": -4.136, "Cl": -1.848}
MU_R2SCAN = {"Li": -2.301, "O": -6.122, "P": -6.870, "S": -5.003, "Cl": -2.517}

# POTCARs MaterialsProject2020Compatibility expects, so the r2SCAN mixing scheme accepts GGA entries.
POTCAR_TITELS = {"Li": "PAW_PBE Li_sv 10Sep2004", "O": "PAW_PBE O 08Apr2002",
                 "P": "PAW_PBE P 17Jan2003", "S": "PAW_PBE S 08Apr2002",
                 "Cl": "PAW_PBE Cl 06Sep2000"}


@dataclass
class Fault:
    """One kind of bad answer, served to the next `times` requests whose path starts with `path`.

    kind: "status" (HTTP `status`, with a Retry-After header if `retry_after` is set),
    "delay" (sleep `delay` s before answering normally), "truncated" (200 with half the JSON body),
    "empty" (200 with no documents), "drop" (close the connection without an answer),
    "redirect" (HTTP `status` to `location` + the request's path and query),
    "drip" (the status line, then one byte of an endless header every `delay` s),
    "drip-body" (headers declaring `size` bytes, then one byte of body every `delay` s),
    "endless" (a chunked body of spaces that never ends), "huge" (`size` bytes of spaces, with a
    Content-Length), "huge-unsized" (the same without a length, ended by closing).
    Streams stop after `duration` s, when the client hangs up, or when the server stops; `sent`
    counts the bytes written.
    """

    kind: str
    path: str = "/materials/thermo"
    times: int = 1
    status: int = 500
    retry_after: int | None = None
    delay: float = 0.0
    location: str = ""
    size: int = 1 << 20
    duration: float = 30.0
    sent: int = 0


@dataclass
class Request:
    path: str
    params: dict
    headers: dict
    time: float = field(default_factory=time.monotonic)


def _structure(comp: Composition) -> Structure:
    """A made-up cubic structure for comp: atoms on a simple cubic grid 3 A apart."""
    species = [str(el) for el, amt in comp.items() for _ in range(int(round(amt)))]
    k = max(1, math.ceil(len(species) ** (1 / 3) - 1e-9))
    coords = [(i / k, j / k, l / k) for i in range(k) for j in range(k) for l in range(k)]
    return Structure(Lattice.cubic(3.0 * k), species, coords[:len(species)])


def make_entries(rows, run_type: str, mu: dict[str, float], first_id: int = 1000):
    """ComputedStructureEntry objects from (reduced formula, formation energy eV/atom, material no.)."""
    from pymatgen.entries.computed_entries import (ComputedStructureEntry,
                                                   ConstantEnergyAdjustment)

    entries = []
    for name, e_form, number in rows:
        comp = Composition(name).reduced_composition
        if any(abs(a - round(a)) > 1e-9 for a in comp.values()):
            raise ValueError(f"{name}: fake structures need integer formulas")
        structure = _structure(comp)
        natoms = len(structure)
        per_atom = e_form + sum(comp.get_atomic_fraction(el) * mu[str(el)] for el in comp)
        adjustments = []
        parameters = {"run_type": run_type, "is_hubbard": False, "hubbards": {}}
        if run_type in ("GGA", "GGA+U"):
            correction = -0.011 * natoms  # made up: corrected energy != uncorrected energy
            adjustments = [ConstantEnergyAdjustment(correction, uncertainty=0.0,
                                                    name="fake correction")]
            parameters["potcar_spec"] = [{"titel": POTCAR_TITELS[str(el)], "hash": None}
                                         for el in comp]
        else:
            correction = 0.0
        material_id = f"mp-{number}"
        entries.append(ComputedStructureEntry(
            structure, per_atom * natoms - correction, energy_adjustments=adjustments,
            parameters=parameters,
            data={"material_id": material_id, "run_type": run_type,
                  "task_id": f"mp-{number + 500000}"},
            entry_id=f"{material_id}-{run_type}"))
    return entries


def thermo_docs(entries, thermo_type: str) -> list[dict]:
    """ThermoDoc-shaped JSON dicts, one per entry, as the API serves them.

    Only the fields the client asks for (``entries``, ``thermo_type``) and those the server filters
    on matter; the client validates them against emmet's ThermoDoc model. (Built by hand:
    ``ThermoDoc.from_entries`` runs symmetry analysis and takes seconds.)
    """
    refs: dict[str, float] = {}
    for entry in entries:
        if entry.composition.is_element:
            el = str(entry.composition.elements[0])
            refs[el] = min(refs.get(el, math.inf), entry.energy_per_atom)
    docs = []
    for entry in entries:
        comp = entry.composition
        material_id = entry.data["material_id"]
        run_type = entry.parameters["run_type"]
        e_form = entry.energy_per_atom - sum(comp.get_atomic_fraction(el) * refs[str(el)]
                                             for el in comp)
        docs.append({
            "material_id": material_id,
            "thermo_id": f"{material_id}_{thermo_type}",
            "thermo_type": thermo_type,
            "chemsys": comp.chemical_system,
            "elements": sorted(str(el) for el in comp.elements),
            "nelements": len(comp.elements),
            "nsites": int(comp.num_atoms),
            "formula_pretty": comp.reduced_formula,
            "composition": {str(el): amt for el, amt in comp.items()},
            "composition_reduced": {str(el): amt for el, amt in comp.reduced_composition.items()},
            "energy_per_atom": entry.energy_per_atom,
            "uncorrected_energy_per_atom": entry.uncorrected_energy_per_atom,
            "formation_energy_per_atom": e_form,
            "energy_type": run_type,
            "entry_types": [run_type],
            "deprecated": False,
            "entries": {run_type: json.loads(json.dumps(entry.as_dict(), allow_nan=False))},
        })
    return docs


SYSTEMS = (("Li", "O", "P"), ("Cl", "Li", "P", "S"))
STREAM_KINDS = ("drip", "drip-body", "endless", "huge", "huge-unsized")


def snapshot_rows(table=None, systems=SYSTEMS) -> tuple:
    """(reduced formula, formation energy) of the snapshot entries of these systems (deduplicated).

    table: the snapshot EntryTable, if already loaded (parsing it afresh takes a while).
    """
    if table is None:
        from screening.data.snapshot import load_entries

        table = load_entries()
    rows = {}
    for elements in systems:
        chemsys = table.chemsys(elements)
        for name, energy in zip(chemsys.names, chemsys.energies):
            rows[name] = float(energy)
    return tuple(sorted(rows.items()))


# Extra higher-energy polymorphs: the loader must keep the lowest and take the lowest elemental
# entry as the reference (a metastable O2 must not shift the formation energies).
EXTRA_POLYMORPHS = (("O2", 0.25), ("Li3PO4", 0.04), ("Li", 0.01))


@functools.lru_cache(maxsize=None)
def build_docs(snapshot: tuple) -> dict[str, list[dict]]:
    """ThermoDocs by thermo type (as sent in the query: GGA_GGA+U, r2SCAN) from snapshot rows."""
    rows = [(name, e, 1000 + i) for i, (name, e) in enumerate(snapshot)]
    names = {name for name, _, _ in rows}
    rows += [(name, e, 9000 + i) for i, (name, e) in enumerate(EXTRA_POLYMORPHS) if name in names]
    gga = thermo_docs(make_entries(rows, "GGA", MU_GGA), "GGA_GGA+U")
    r2scan = thermo_docs(make_entries(rows, "r2SCAN", MU_R2SCAN), "R2SCAN")
    return {"GGA_GGA+U": gga, "r2SCAN": r2scan, "R2SCAN": r2scan}


class FakeMPServer:
    """The fake API on 127.0.0.1 (a free port), served from a thread. Use as a context manager."""

    def __init__(self, table=None, systems=SYSTEMS, db_version: str = DB_VERSION):
        """table: the snapshot EntryTable the entries come from (default: load_entries())."""
        self.docs = build_docs(snapshot_rows(table, systems))
        self.db_version = db_version
        self.faults: list[Fault] = []
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True,
                                        kwargs={"poll_interval": 0.05})

    # -- control ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> "FakeMPServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # wakes handlers sleeping in a "delay" fault
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> "FakeMPServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def add_fault(self, kind: str, **kwargs) -> Fault:
        fault = Fault(kind, **kwargs)
        with self._lock:
            self.faults.append(fault)
        return fault

    def count(self, path: str = "/materials/thermo") -> int:
        """Requests received whose path starts with `path`."""
        with self._lock:
            return sum(1 for r in self.requests if r.path.startswith(path))

    def thermo_requests(self) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path.startswith("/materials/thermo")]

    # -- serving ---------------------------------------------------------------------------
    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and path.startswith(fault.path):
                    fault.times -= 1
                    return fault
        return None

    def _answer(self, path: str, params: dict) -> tuple[int, dict]:
        if path == "/heartbeat":
            return 200, {"db_version": self.db_version, "version": EMMET_VERSION,
                         "access_controlled_batch_ids": []}
        if path.rstrip("/") == "/materials/thermo":
            return 200, self._thermo(params)
        return 404, {"detail": "Not Found"}

    def _thermo(self, params: dict) -> dict:
        chemsys = set(params.get("chemsys", "").split(",")) - {""}
        types = set(params.get("thermo_types", "GGA_GGA+U").split(","))
        docs = [doc for t in sorted(types) for doc in self.docs.get(t, [])
                if not chemsys or doc["chemsys"] in chemsys]
        docs = list({doc["thermo_id"]: doc for doc in docs}.values())  # R2SCAN and r2SCAN
        skip = int(params.get("_skip", 0))
        limit = int(params.get("_limit", 1000))
        page = docs[skip:skip + limit]
        fields = [f for f in params.get("_fields", "").split(",") if f]
        if fields and params.get("_all_fields", "false").lower() != "true":
            page = [{k: doc[k] for k in fields if k in doc} for doc in page]
        return {"data": page, "meta": {"api_version": EMMET_VERSION, "time_stamp": "2025-01-01",
                                       "total_doc": len(docs), "max_limit": 1000,
                                       "default_fields": ["material_id", "last_updated"]}}

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                split = urlsplit(self.path)
                params = {k: v[-1] for k, v in parse_qs(split.query).items()}
                with server._lock:
                    server.requests.append(Request(split.path, params, dict(self.headers)))
                fault = server._take_fault(split.path)
                if fault is not None and fault.kind == "delay":
                    if server._stop.wait(fault.delay):
                        return
                    fault = None
                if fault is not None and fault.kind == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if fault is not None and fault.kind == "redirect":
                    location = fault.location.rstrip("/") + self.path
                    self._send_bytes(fault.status, b"", {"Location": location})
                    return
                if fault is not None and fault.kind in STREAM_KINDS:
                    self.close_connection = True
                    self._stream(fault)
                    return
                if fault is not None and fault.kind == "status":
                    headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
                    self._send(fault.status, {"detail": f"fake fault: HTTP {fault.status}"}, headers)
                    return
                status, body = server._answer(split.path, params)
                if fault is not None and fault.kind == "empty" and "data" in body:
                    body = {**body, "data": [], "meta": {**body["meta"], "total_doc": 0}}
                payload = json.dumps(body).encode()
                if fault is not None and fault.kind == "truncated":
                    payload = payload[:len(payload) // 2]
                self._send_bytes(status, payload, {})

            def _stream(self, fault):
                """Serve a hostile stream until it ends, the client hangs up or the server stops."""
                deadline = time.monotonic() + fault.duration
                kind = fault.kind
                if kind == "drip":
                    head, piece = b"HTTP/1.1 200 OK\r\nX-Drip: ", b"a"
                elif kind == "drip-body":
                    head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                            f"Content-Length: {fault.size}\r\n\r\n").encode()
                    piece = b" "
                elif kind == "endless":
                    head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                            b"Transfer-Encoding: chunked\r\n\r\n")
                    piece = b"10000\r\n" + b" " * 0x10000 + b"\r\n"
                else:
                    length = f"Content-Length: {fault.size}\r\n" if kind == "huge" else ""
                    head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{length}"
                            f"Connection: close\r\n\r\n").encode()
                    piece = b" " * 0x10000
                left = fault.size if kind in ("huge", "huge-unsized") else None
                try:
                    if kind == "drip":  # even the status line drips
                        for byte in head:
                            if server._stop.wait(fault.delay):
                                return
                            self._write(fault, bytes([byte]))
                    else:
                        self._write(fault, head)
                    while time.monotonic() < deadline and not server._stop.is_set():
                        if left is not None:
                            if left <= 0:
                                return
                            piece = piece[:left]
                            left -= len(piece)
                        self._write(fault, piece)
                        if fault.delay and server._stop.wait(fault.delay):
                            return
                except OSError:
                    pass  # the client hung up: what a guarded client does

            def _write(self, fault, data):
                self.wfile.write(data)
                self.wfile.flush()
                with server._lock:
                    fault.sent += len(data)

            def _send(self, status, body, headers):
                self._send_bytes(status, json.dumps(body).encode(), headers)

            def _send_bytes(self, status, payload, headers):
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): nothing to answer

        return Handler
