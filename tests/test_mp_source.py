"""The Materials Project source: the real mp-api MPRester against a local fake API server.

The fake server (tests/fake_mp_server.py) serves thermo documents made from the snapshot's
Li-O-P and Cl-Li-P-S entries, so the formation energies load_mp_entries computes must equal the
snapshot's. Faults (429, 5xx, timeouts, truncated JSON, empty results) are served on demand.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time

import numpy as np
import pytest

from fake_mp_server import DB_VERSION, FakeMPServer
from screening.data import mp_http, mp_source
from screening.data.mp_source import load_mp_entries, mp_table_for
from screening.data.snapshot import file_sha256
from screening.errors import DataError, InputError

KEY = "0123456789abcdef0123456789abcdef"  # 32 characters, like a real key


@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    monkeypatch.setenv("SCREENING_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv(mp_source.ENV_BACKOFF, "0")  # no sleeping between retries in tests
    monkeypatch.delenv("MP_API_KEY", raising=False)
    monkeypatch.delenv("MP_API_ENDPOINT", raising=False)


@pytest.fixture
def server(table):
    with FakeMPServer(table) as fake:
        yield fake


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache" / "mp"


def load(server, elements, **kwargs):
    kwargs.setdefault("timeout", 5)
    return load_mp_entries(elements, api_key=KEY, endpoint=server.url, **kwargs)


def assert_matches_snapshot(table, snapshot, elements):
    got, want = table.chemsys(elements), snapshot.chemsys(elements)
    assert got.names == want.names
    np.testing.assert_allclose(got.energies, want.energies, rtol=0, atol=1e-6)


def cache_files(cache):
    return sorted(p.name for p in cache.iterdir()) if cache.is_dir() else []


def assert_no_partial_files(cache):
    leftovers = [name for name in cache_files(cache) if name.endswith(".tmp") or name.startswith(".")]
    assert leftovers == []


def one_line_error(excinfo, *needles):
    message = str(excinfo.value)
    assert "\n" not in message and message.strip() == message
    for needle in needles:
        assert needle in message, message
    return message


# -- entries -------------------------------------------------------------------------------------

@pytest.mark.parametrize("elements", [("Li", "P", "O"), ("Li", "P", "S", "Cl")])
def test_formation_energies_equal_the_snapshot(server, table, cache, elements):
    mp = load(server, elements)
    assert_matches_snapshot(mp, table, elements)
    # the metastable O2 and Li3PO4 polymorphs are counted, the lowest kept; Li and O2 are at 0
    if "O" in elements:
        assert mp.n_polymorphs[mp.row_of("O2")] == 2
        assert mp.n_polymorphs[mp.row_of("Li3PO4")] == 2
    assert mp.energies[mp.row_of("Li")] == 0.0

    chemsys = "-".join(sorted(elements))
    src = mp.source
    assert (src.kind, src.path) == ("materials-project", server.url)
    assert src.extra == {"database_version": DB_VERSION, "thermo_type": "GGA_GGA+U",
                         "chemsys": chemsys}
    path = cache / f"mp-{DB_VERSION}-GGA_GGA+U-{chemsys}.json.gz"
    assert cache_files(cache) == [path.name]
    assert src.sha256 == file_sha256(path)

    # what MPRester asked for: every subsystem, GGA/GGA+U only, our key
    (request,) = server.thermo_requests()
    subsystems = set(request.params["chemsys"].split(","))
    assert len(subsystems) == 2 ** len(elements) - 1 and chemsys in subsystems
    assert request.params["thermo_types"] == "GGA_GGA+U"
    assert request.params["_fields"] == "entries,thermo_type"
    assert request.headers.get("x-api-key") == KEY


def test_key_and_endpoint_from_the_environment(server, table, monkeypatch):
    monkeypatch.setenv("MP_API_KEY", KEY)
    monkeypatch.setenv("MP_API_ENDPOINT", server.url)
    mp = load_mp_entries(["Li", "O"], timeout=5)
    assert_matches_snapshot(mp, table, ["Li", "O"])
    assert mp.source.path == server.url
    assert server.thermo_requests()[0].headers.get("x-api-key") == KEY


def test_r2scan_mixing_option(server, table, cache):
    mp = load(server, ["O", "Li"], thermo_type="GGA_GGA+U_R2SCAN")
    # every material has an r2SCAN twin, so the mixed energies are r2SCAN ones (other references)
    assert_matches_snapshot(mp, table, ["Li", "O"])
    assert mp.source.extra["thermo_type"] == "GGA_GGA+U_R2SCAN"
    assert sorted(r.params["thermo_types"] for r in server.thermo_requests()) == ["GGA_GGA+U", "r2SCAN"]
    assert cache_files(cache) == [f"mp-{DB_VERSION}-GGA_GGA+U_R2SCAN-Li-O.json.gz"]


def test_mp_table_for_fetches_each_maximal_system_once(server, table):
    mp = mp_table_for(["Li2O", "LiCl", "Li2O2", "Li"], api_key=KEY, endpoint=server.url,
                      timeout=5)
    assert server.count() == 2
    assert mp.source.extra["chemsys"] == "Cl-Li,Li-O"
    for elements in (("Li", "O"), ("Cl", "Li")):
        assert_matches_snapshot(mp, table, elements)
    assert mp.n_polymorphs[mp.row_of("Li")] == 2  # shared by both systems, each entry kept once


def test_fake_documents_parse_as_thermo_docs(server):
    """The fake answers have the shape the client's document model expects (as real ones do)."""
    import warnings

    from emmet.core.thermo import ThermoDoc
    from mp_api.client import MPRester

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with MPRester(api_key=KEY, endpoint=server.url, mute_progress_bars=True) as mpr:
            docs = mpr.materials.thermo.search(chemsys=["Li", "O", "Li-O"],
                                               thermo_types=["GGA_GGA+U"],
                                               fields=["entries", "thermo_type"])
    assert len(docs) == 8
    assert {doc.thermo_type.value for doc in docs} == {"GGA_GGA+U"}
    assert set(ThermoDoc.model_fields) >= {"entries", "thermo_type", "chemsys"}
    assert {entry.composition.reduced_formula for doc in docs for entry in doc.entries.values()} \
        == {"Li", "O2", "Li2O", "Li2O2", "LiO2", "LiO3"}


# -- cache ---------------------------------------------------------------------------------------

def test_second_call_is_served_from_the_cache(server, cache):
    first = load(server, ["Li", "O"])
    assert server.count() == 1
    second = load(server, ["O", "Li"])
    assert server.count() == 1  # only the heartbeat (database version) was asked again
    assert server.count("/heartbeat") >= 2
    assert second.source == first.source
    np.testing.assert_array_equal(second.energies, first.energies)
    assert_no_partial_files(cache)


def test_subsets_are_served_from_a_cached_superset(server, table, cache):
    big = load(server, ["Li", "P", "S"])
    for elements in (["Li", "S"], ["P", "S"], ["S"]):
        sub = load(server, elements)
        assert_matches_snapshot(sub, table, elements)
        assert sub.source.extra["chemsys"] == "-".join(sorted(elements))
        assert sub.source.sha256 == big.source.sha256  # the payload it was read from
    assert server.count() == 1
    assert len(cache_files(cache)) == 1
    load(server, ["Li", "Cl"])  # not a subset: fetched
    assert server.count() == 2


def test_a_new_database_version_does_not_reuse_the_cache(server, cache):
    load(server, ["Li", "O", "P"])
    load(server, ["Li", "O"])  # a subset: no request
    assert server.count() == 1
    server.db_version = "2026.01.15"
    newer = load(server, ["Li", "O"])
    assert server.count() == 2
    assert newer.source.extra["database_version"] == "2026.01.15"
    assert cache_files(cache) == [f"mp-{DB_VERSION}-GGA_GGA+U-Li-O-P.json.gz",
                                  "mp-2026.01.15-GGA_GGA+U-Li-O.json.gz"]


def test_another_thermo_type_does_not_reuse_the_cache(server):
    load(server, ["Li", "O"], thermo_type="GGA_GGA+U")
    load(server, ["Li", "O"], thermo_type="GGA_GGA+U_R2SCAN")
    assert server.count() == 3  # GGA_GGA+U, then GGA_GGA+U and r2SCAN for the mixing
    load(server, ["Li", "O"], thermo_type="GGA_GGA+U_R2SCAN")
    load(server, ["Li", "O"], thermo_type="GGA_GGA+U")
    assert server.count() == 3


def test_use_cache_false_neither_reads_nor_writes(server, cache):
    load(server, ["Li", "O"], use_cache=False)
    load(server, ["Li", "O"], use_cache=False)
    assert server.count() == 2
    assert cache_files(cache) == []


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong-version", "wrong-energy"])
def test_a_corrupt_cache_file_is_refetched_not_trusted(server, table, cache, damage):
    import gzip
    import json

    load(server, ["Li", "O"])
    path = cache / cache_files(cache)[0]
    good = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"not a cache file")
    elif damage == "truncated":
        path.write_bytes(good[: len(good) // 2])
    else:
        payload = json.loads(gzip.decompress(good))
        if damage == "wrong-version":
            payload["database_version"] = "1999.01.01"
        else:
            payload["entries"][0]["energy_per_atom"] = float("nan")
        path.write_bytes(gzip.compress(json.dumps(payload).encode()))
    for elements in (["O"], ["Li", "O"]):  # neither a subset nor the system itself trusts it
        assert_matches_snapshot(load(server, elements), table, elements)
    assert server.count() == 3
    assert path.read_bytes() == good  # rewritten whole, byte for byte
    assert_no_partial_files(cache)


def test_concurrent_loads_leave_one_whole_cache_file(server, table, cache):
    results, errors = [], []

    def worker():
        try:
            results.append(load(server, ["Li", "O"]))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(results) == 4
    assert len({r.source.sha256 for r in results}) == 1
    assert len(cache_files(cache)) == 1
    assert_no_partial_files(cache)
    assert results[0].source.sha256 == file_sha256(cache / cache_files(cache)[0])


# -- faults --------------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [429, 500, 503])
def test_transient_errors_are_retried(server, table, cache, status):
    server.add_fault("status", status=status, times=2, retry_after=0 if status == 429 else None)
    mp = load(server, ["Li", "O"], retries=3)
    assert_matches_snapshot(mp, table, ["Li", "O"])
    assert server.count() == 3
    assert len(cache_files(cache)) == 1


def test_retry_after_is_honoured(server):
    server.add_fault("status", status=429, times=1, retry_after=1)
    start = time.monotonic()
    load(server, ["Li", "O"], retries=1)
    requests = server.thermo_requests()
    assert len(requests) == 2
    assert requests[1].time - requests[0].time >= 0.9
    assert time.monotonic() - start < 10


def test_retry_after_is_capped(server, monkeypatch):
    monkeypatch.setattr(mp_http, "MAX_RETRY_AFTER", 0.2)
    server.add_fault("status", status=429, times=1, retry_after=3600)
    start = time.monotonic()
    load(server, ["Li", "O"], retries=1)
    assert time.monotonic() - start < 5


@pytest.mark.parametrize("status, needle", [(429, "HTTP 429"), (500, "HTTP 500"), (502, "HTTP 502")])
def test_exhausted_retries_give_one_clear_line(server, cache, status, needle):
    server.add_fault("status", status=status, times=100, retry_after=0 if status == 429 else None)
    with pytest.raises(DataError) as excinfo:
        load(server, ["Li", "O"], retries=2)
    one_line_error(excinfo, needle, server.url, "3 attempts", "--source mp")
    assert server.count() == 3
    assert cache_files(cache) == []


def test_timeout_then_success(server, table):
    server.add_fault("delay", delay=3.0, times=1)
    mp = load(server, ["Li", "O"], timeout=0.3, retries=1)
    assert_matches_snapshot(mp, table, ["Li", "O"])
    assert server.count() == 2


def test_timeout(server, cache):
    server.add_fault("delay", delay=3.0, times=100)
    start = time.monotonic()
    with pytest.raises(DataError) as excinfo:
        load(server, ["Li", "O"], timeout=0.3, retries=1)
    assert time.monotonic() - start < 2.5
    one_line_error(excinfo, "did not answer", "0.3 s", server.url, "--source mp")
    assert server.count() == 2
    assert cache_files(cache) == []


def test_heartbeat_timeout(server, cache):
    server.add_fault("delay", path="/heartbeat", delay=3.0, times=100)
    with pytest.raises(DataError) as excinfo:
        load(server, ["Li", "O"], timeout=0.3, retries=0)
    one_line_error(excinfo, "did not answer within 0.3 s", "heartbeat", server.url, "--source mp")
    assert server.count() == 0
    assert cache_files(cache) == []


def test_truncated_json(server, cache):
    server.add_fault("truncated", times=1)
    with pytest.raises(DataError) as excinfo:
        load(server, ["Li", "O"])
    one_line_error(excinfo, "truncated or invalid JSON", server.url, "--source mp")
    assert cache_files(cache) == []


def test_truncated_heartbeat(server):
    server.add_fault("truncated", path="/heartbeat", times=1)
    with pytest.raises(DataError) as excinfo:
        load(server, ["Li", "O"])
    one_line_error(excinfo, "truncated or invalid JSON", "heartbeat")


def test_dropped_connections(server, cache):
    server.add_fault("drop", times=100)
    with pytest.raises(DataError) as excinfo:
        load(server, ["Li", "O"], retries=1)
    one_line_error(excinfo, server.url, "--source mp")
    assert server.count() == 2
    assert cache_files(cache) == []


@pytest.mark.parametrize("how", ["empty-answer", "unknown-system"])
def test_empty_result(server, cache, how):
    if how == "empty-answer":
        server.add_fault("empty", times=1)
        elements, chemsys = ["Li", "O"], "Li-O"
    else:
        elements, chemsys = ["Fe", "Ni"], "Fe-Ni"
    with pytest.raises(DataError) as excinfo:
        load(server, elements)
    one_line_error(excinfo, f"no entries for the chemical system {chemsys}")
    assert cache_files(cache) == []


def test_refused_key(server, cache):
    server.add_fault("status", status=403, times=1)
    with pytest.raises(DataError) as excinfo:
        load(server, ["Li", "O"])
    one_line_error(excinfo, "refused the API key", "MP_API_KEY")
    assert cache_files(cache) == []


def test_unreachable_server(cache):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}/"
    with pytest.raises(DataError) as excinfo:
        load_mp_entries(["Li", "O"], api_key=KEY, endpoint=endpoint, timeout=1, retries=1)
    one_line_error(excinfo, "cannot reach the Materials Project", endpoint, "--source mp")
    assert cache_files(cache) == []


# -- inputs --------------------------------------------------------------------------------------

def test_no_key_is_one_line_naming_mp_api_key(server):
    with pytest.raises(DataError) as excinfo:
        load_mp_entries(["Li", "O"], endpoint=server.url)
    one_line_error(excinfo, "MP_API_KEY", "--source mp", "snapshot")
    assert server.requests == []


def test_malformed_key(server):
    with pytest.raises(DataError) as excinfo:
        load_mp_entries(["Li", "O"], api_key="short", endpoint=server.url)
    one_line_error(excinfo, "MP_API_KEY", "32 characters")


@pytest.mark.parametrize("kwargs", [{"elements": ["Li", "Xx"]}, {"elements": []},
                                    {"elements": ["Li"], "thermo_type": "PBE"},
                                    {"elements": [str(el) for el in "H Li Be B C N O F Na Mg".split()]}])
def test_bad_inputs(server, kwargs):
    with pytest.raises(InputError):
        load_mp_entries(api_key=KEY, endpoint=server.url, **kwargs)
    assert server.count() == 0


def test_no_stray_files_anywhere(server, tmp_path):
    server.add_fault("truncated", times=1)
    with pytest.raises(DataError):
        load(server, ["Li", "O"])
    load(server, ["Li", "O"])
    found = [os.path.relpath(os.path.join(d, f), tmp_path)
             for d, _, files in os.walk(tmp_path) for f in files]
    assert found == [os.path.join("cache", "mp", f"mp-{DB_VERSION}-GGA_GGA+U-Li-O.json.gz")]


@pytest.mark.parametrize("argv", [["window", "Li6PS5Cl"], ["stability", "Li3PS4"],
                                  ["pair", "Li3PO4", "Li2O"], ["window", "Li3PO4", "--as-is"]])
def test_cli_with_source_mp_equals_the_snapshot(server, monkeypatch, capsys, argv):
    """`screening window Li6PS5Cl --source mp` against the fake server gives the snapshot's answer."""
    import json

    from screening.cli import main

    monkeypatch.setenv("MP_API_KEY", KEY)
    monkeypatch.setenv("MP_API_ENDPOINT", server.url)
    assert main([*argv, "--json"]) == 0
    snapshot = json.loads(capsys.readouterr().out)
    assert main([*argv, "--json", "--source", "mp"]) == 0
    live = json.loads(capsys.readouterr().out)
    assert server.count() >= 1
    assert live["provenance"]["data_source"]["kind"] == "materials-project"
    assert live["provenance"]["data_source"]["database_version"] == DB_VERSION
    for result in (snapshot, live):
        result.pop("provenance")
    # formation energies from total energies differ from the snapshot's in the last bits: numbers
    # agree to 1e-6 (V, eV/atom, atom fractions), not to the last printed digit
    assert_same_result(live, snapshot)


_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?![\w.])")  # not in Li2O


def assert_same_result(got, want, atol=1e-6, where="result"):
    """Equal JSON results, numbers within `atol`; numbers printed in text within one unit of their
    last printed digit."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and sorted(got) == sorted(want), where
        for key in want:
            assert_same_result(got[key], want[key], atol, f"{where}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (a, b) in enumerate(zip(got, want)):
            assert_same_result(a, b, atol, f"{where}[{i}]")
    elif isinstance(want, bool) or want is None:
        assert got is want, where
    elif isinstance(want, (int, float)):
        assert isinstance(got, (int, float)) and not isinstance(got, bool), where
        assert got == pytest.approx(want, rel=0, abs=atol), where
    elif isinstance(want, str):
        assert isinstance(got, str), where
        assert _NUMBER.split(got) == _NUMBER.split(want), (where, got, want)
        for a, b in zip(_NUMBER.findall(got), _NUMBER.findall(want)):
            decimals = len(b.split(".")[1]) if "." in b and "e" not in b.lower() else 0
            assert float(a) == pytest.approx(float(b), rel=1e-6, abs=atol + 10.0 ** -decimals), (where, got, want)
    else:
        assert got == want, where


def test_assert_same_result_tolerates_round_off_only():
    want = {"profile": [{"potential": 0.870232862, "products": {"Li2S": 5.0}}], "reaction": "0.5 Li2O -> Li2O2",
            "x": None, "ok": True}
    assert_same_result({"profile": [{"potential": 0.870232863, "products": {"Li2S": 5.0000000001}}],
                        "reaction": "0.5 Li2O -> Li2O2", "x": None, "ok": True}, want)
    assert_same_result({**want, "reaction": "0.6 Li2O -> Li2O2"}, {**want, "reaction": "0.5 Li2O -> Li2O2"})
    for bad in ({**want, "profile": [{"potential": 0.870234, "products": {"Li2S": 5.0}}]},
                {**want, "reaction": "0.5 Li2O -> LiO2"}, {**want, "reaction": "0.8 Li2O -> Li2O2"},
                {**want, "reaction": "0.5 Li3O -> Li2O2"},
                {**want, "x": 0.0}, {**want, "ok": 1}, {**want, "extra": 1}):
        with pytest.raises(AssertionError):
            assert_same_result(bad, want)


def test_cli_source_mp_without_key_is_one_line(monkeypatch, capsys):
    from screening.cli import main

    assert main(["window", "Li6PS5Cl", "--source", "mp"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "MP_API_KEY" in err[0]
