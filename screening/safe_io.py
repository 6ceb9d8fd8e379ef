"""Reading files other people send: bounded sizes, depths and counts, no code from data, no secrets echoed.

Every reader here raises `InputError` (one line, exit status 2) instead of running out of memory, recursing
without end or importing a module a file names. The limits are documented in the README ("Security and
limits") and each can be changed with an environment variable, e.g. SCREENING_MAX_DECOMPRESSED_BYTES.
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import re
import reprlib
import threading
from pathlib import Path

from screening.errors import InputError

_DEFAULTS = {
    # name: (default, what it bounds)
    "max_file_bytes": (1 << 30, "bytes of any input file on disk"),
    "max_decompressed_bytes": (256 << 20, "bytes of a compressed input once decompressed"),
    "max_config_bytes": (1 << 20, "bytes of a YAML or JSON configuration"),
    "max_json_depth": (64, "nesting depth of JSON documents"),
    "max_yaml_depth": (64, "nesting depth of YAML documents"),
    "max_yaml_nodes": (100_000, "nodes of a YAML document after expanding its aliases"),
    "max_int_digits": (40, "digits of an integer in JSON or YAML"),
}


class _Limits:
    """The input limits; each attribute reads SCREENING_<NAME> from the environment when set."""

    def __getattr__(self, name: str) -> int:
        if name not in _DEFAULTS:
            raise AttributeError(name)
        env = f"SCREENING_{name.upper()}"
        text = os.environ.get(env)
        if text is None or text.strip() == "":
            return _DEFAULTS[name][0]
        text = text.strip()
        if not re.fullmatch(r"[0-9]{1,15}", text) or int(text) < 1:
            raise InputError(f"{env} must be a positive integer, not {quote(text)}")
        return int(text)

    def describe(self) -> dict[str, tuple[int, str]]:
        """{name: (current value, what it bounds)} for documentation and provenance."""
        return {name: (getattr(self, name), what) for name, (_, what) in _DEFAULTS.items()}


LIMITS = _Limits()

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 200
_repr.maxlist = _repr.maxtuple = _repr.maxdict = _repr.maxset = 6
_repr.maxlevel = 3


def quote(value, limit: int = 80) -> str:
    """repr(value) for an error message, cut to about `limit` characters (never the whole of a huge value)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 332:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    try:
        text = redact(_repr.repr(value))
    except ValueError:  # a nested integer beyond Python's digit limit
        return f"a {type(value).__name__} holding a huge number"
    text = text.replace("\n", "\\n").replace("\r", "\\r")
    if len(text) > limit:
        text = text[:limit] + "...(cut)"
    return text


# --- secrets ---------------------------------------------------------------------------------

_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@")


def register_secret(value: str | None) -> None:
    """Remember a secret (an API key) so that `redact` removes it from any text."""
    if value and len(value) >= 4:
        with _SECRETS_LOCK:
            _SECRETS.add(value)
            for part in re.split(r"[\r\n]+", value):  # a key with a newline must not leak in pieces
                if len(part) >= 4:
                    _SECRETS.add(part)


def redact_url(url: str) -> str:
    """The URL without user:password@."""
    return _USERINFO.sub(lambda m: m.group("scheme") + "***@", str(url))


def redact(text: str) -> str:
    """`text` without URL credentials and without any registered secret."""
    text = redact_url(str(text))
    with _SECRETS_LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "***")
        escaped = repr(secret)[1:-1]
        if escaped != secret and escaped in text:
            text = text.replace(escaped, "***")
    return text


# --- files -----------------------------------------------------------------------------------

_MAGIC = ((b"\x1f\x8b", lambda f: gzip.GzipFile(fileobj=f), "gzip"), (b"BZh", bz2.BZ2File, "bzip2"),
          (b"\xfd7zXZ\x00", lzma.LZMAFile, "xz"))


def read_bytes(path: str | Path, what: str, limit: int | None = None) -> bytes:
    """The bytes of a file, decompressed if it is gzip/bzip2/xz, at most `limit` bytes once decompressed
    (default LIMITS.max_decompressed_bytes; LIMITS.max_file_bytes on disk)."""
    path = Path(path)
    limit = LIMITS.max_decompressed_bytes if limit is None else limit
    try:
        size = path.stat().st_size
        if size > LIMITS.max_file_bytes:
            raise InputError(f"{what} {path} is {size} bytes, more than the limit of {LIMITS.max_file_bytes} "
                             "(SCREENING_MAX_FILE_BYTES)")
        with open(path, "rb") as raw:
            head = raw.read(6)
            raw.seek(0)
            for magic, opener, name in _MAGIC:
                if head.startswith(magic):
                    try:
                        with opener(raw) as stream:
                            data = stream.read(limit + 1)
                    except (OSError, EOFError, lzma.LZMAError, ValueError) as exc:
                        raise InputError(f"{what} {path} is not valid {name} data: {_one_line(exc)}") from None
                    break
            else:
                data = raw.read(limit + 1)
    except InputError:
        raise
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror or _one_line(exc)}") from None
    if len(data) > limit:
        raise InputError(f"{what} {path} is larger than {limit} bytes once decompressed "
                         "(SCREENING_MAX_DECOMPRESSED_BYTES raises the limit)")
    return data


def decode_text(data: bytes, what: str) -> str:
    """UTF-8 (with or without BOM) or UTF-16/32 with a BOM."""
    for bom, codec in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe\x00\x00", "utf-32"),
                       (b"\x00\x00\xfe\xff", "utf-32"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if data.startswith(bom):
            break
    else:
        codec = "utf-8"
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} is not {codec.upper()} text (byte {exc.start})") from None


def read_text(path: str | Path, what: str, limit: int | None = None) -> str:
    """`read_bytes`, decoded as `decode_text` does."""
    return decode_text(read_bytes(path, what, limit), f"{what} {path}")


def _one_line(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return redact(text[:limit])


# --- JSON ------------------------------------------------------------------------------------

def _no_duplicates(what: str):
    def hook(pairs):
        seen = {}
        for key, value in pairs:
            if key in seen:
                raise InputError(f"{what}: the key {quote(key)} appears twice in one object")
            seen[key] = value
        return seen
    return hook


def _bounded_int(what: str):
    def parse(text: str) -> int:
        digits = len(text.lstrip("-"))
        if digits > LIMITS.max_int_digits:
            raise InputError(f"{what}: an integer of {digits} digits (more than {LIMITS.max_int_digits})")
        return int(text)
    return parse


def _refuse_constant(what: str):
    def parse(name: str):
        raise InputError(f"{what}: {name} is not a number JSON allows")
    return parse


def check_depth(obj, what: str, max_depth: int) -> None:
    """Refuse containers nested deeper than `max_depth` (iterative: deep input cannot recurse us)."""
    stack = [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, (list, tuple)):
            children = node
        else:
            continue
        if depth > max_depth:
            raise InputError(f"{what} is nested more than {max_depth} levels deep")
        stack.extend((child, depth + 1) for child in children)


def loads_json(text: str | bytes, what: str) -> object:
    """Parse JSON: duplicate keys, NaN/Infinity, huge integers and deep nesting are refused."""
    if isinstance(text, bytes):
        text = decode_text(text, what)
    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicates(what), parse_int=_bounded_int(what),
                         parse_constant=_refuse_constant(what))
    except RecursionError:
        raise InputError(f"{what} is nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{what} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except ValueError as exc:  # e.g. a float such as 1e999 is inf: refused below
        raise InputError(f"{what} is not valid JSON: {_one_line(exc)}") from None
    check_depth(obj, what, LIMITS.max_json_depth)
    _check_finite(obj, what)
    return obj


def _check_finite(obj, what: str) -> None:
    stack = [obj]
    while stack:
        node = stack.pop()
        if isinstance(node, float):
            if node != node or node in (float("inf"), float("-inf")):
                raise InputError(f"{what}: a number out of the floating-point range")
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


# --- YAML ------------------------------------------------------------------------------------

def load_yaml(text: str, what: str) -> object:
    """yaml.safe_load with bounds: size, nesting depth, nodes after alias expansion, integer digits."""
    import yaml

    if len(text) > LIMITS.max_config_bytes:
        raise InputError(f"{what} is {len(text)} characters, more than {LIMITS.max_config_bytes} "
                         "(SCREENING_MAX_CONFIG_BYTES)")
    try:
        _check_yaml_nesting(text, what)
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except RecursionError:
        raise InputError(f"{what} is nested too deeply") from None
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{what} is not valid YAML: {first[:160]}") from None
    if len(nodes) > 1:
        raise InputError(f"{what} holds {len(nodes)} YAML documents; one is expected")
    if not nodes or nodes[0] is None:
        return None
    _check_yaml_graph(nodes[0], what)
    try:
        return yaml.SafeLoader(text).get_single_data()
    except RecursionError:
        raise InputError(f"{what} is nested too deeply") from None
    except (yaml.YAMLError, ValueError, TypeError) as exc:  # e.g. an unhashable key
        raise InputError(f"{what} is not valid YAML: {_one_line(exc)}") from None


def _check_yaml_nesting(text: str, what: str) -> None:
    """Refuse nesting deeper than the limit from the parser's event stream, stopping at the first
    level too many: PyYAML's composer recurses per level, so a document 5,000 brackets deep would
    otherwise cost seconds before the RecursionError."""
    import yaml

    max_depth = LIMITS.max_yaml_depth
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            depth += 1
            if depth > max_depth:
                raise InputError(f"{what} is nested more than {max_depth} levels deep")
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            depth -= 1


def _check_yaml_graph(root, what: str) -> None:
    """Count the nodes the document expands to (aliases counted each time they are used) without
    expanding it, and its depth; refuse recursive aliases and over-long integers."""
    import yaml

    max_nodes, max_depth, max_digits = LIMITS.max_yaml_nodes, LIMITS.max_yaml_depth, LIMITS.max_int_digits
    int_tag = "tag:yaml.org,2002:int"
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    # iterative post-order walk; a node on the current path met again is a recursive alias
    on_path: set[int] = set()
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            children = _yaml_children(node)
            size[key] = 1 + sum(size[id(c)] for c in children)
            depth[key] = 1 + max((depth[id(c)] for c in children), default=0)
            if size[key] > max_nodes:
                raise InputError(f"{what} expands to more than {max_nodes} YAML nodes (aliases included; "
                                 "SCREENING_MAX_YAML_NODES)")
            if depth[key] > max_depth:
                raise InputError(f"{what} is nested more than {max_depth} levels deep")
            continue
        if key in size:
            continue
        if key in on_path:
            raise InputError(f"{what} holds a recursive YAML alias")
        if isinstance(node, yaml.ScalarNode):
            if node.tag == int_tag and len(node.value.lstrip("+-")) > max_digits:
                raise InputError(f"{what}: an integer of {len(node.value)} digits (more than {max_digits})")
            size[key], depth[key] = 1, 1
            continue
        on_path.add(key)
        stack.append((node, True))
        if len(on_path) > max_depth + 1:
            raise InputError(f"{what} is nested more than {max_depth} levels deep")
        stack.extend((child, False) for child in _yaml_children(node))


def _yaml_children(node) -> list:
    import yaml

    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


# --- pymatgen objects from JSON --------------------------------------------------------------

# The only classes a data file may name. MontyDecoder imports whatever "@module" says and calls the
# class's from_dict, so anything else could run code: it is refused before decoding.
_ENTRY_CLASSES = {"ComputedEntry", "ComputedStructureEntry", "GibbsComputedStructureEntry", "EnergyAdjustment",
                  "ConstantEnergyAdjustment", "ManualEnergyAdjustment", "CompositionEnergyAdjustment",
                  "TemperatureEnergyAdjustment"}
_COMPATIBILITY_CLASSES = {"MaterialsProject2020Compatibility", "MaterialsProjectCompatibility",
                          "MaterialsProjectAqueousCompatibility"}
ALLOWED_MONTY_CLASSES = {
    # both the current module paths and those older pymatgen releases wrote
    "pymatgen.core.entries": _ENTRY_CLASSES,
    "pymatgen.entries.computed_entries": _ENTRY_CLASSES,
    "pymatgen.analysis.phase_diagram": {"PDEntry", "GrandPotPDEntry", "TransformedPDEntry"},
    "pymatgen.analysis.compatibility": _COMPATIBILITY_CLASSES,
    "pymatgen.entries.compatibility": _COMPATIBILITY_CLASSES,
    "pymatgen.core.composition": {"Composition"},
    "pymatgen.core.structure": {"Structure", "IStructure"},
    "pymatgen.core.lattice": {"Lattice"},
    "pymatgen.core.sites": {"PeriodicSite", "Site"},
    "pymatgen.core.periodic_table": {"Element", "Species", "DummySpecies"},
    "numpy": {"array"},
    "datetime": {"datetime"},
}


def check_monty_classes(obj, what: str) -> None:
    """Refuse any "@module"/"@class" pair that is not on the allow-list (iterative walk)."""
    stack = [obj]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "@module" in node or "@class" in node:
                module, cls = node.get("@module"), node.get("@class")
                if not (isinstance(module, str) and isinstance(cls, str)
                        and cls in ALLOWED_MONTY_CLASSES.get(module, ())):
                    raise InputError(f"{what} names {quote(module, 60)}.{quote(cls, 40)}, which is not a "
                                     "pymatgen entry, structure or composition class: refused (nothing was "
                                     "imported)")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def decode_monty(obj, what: str) -> object:
    """pymatgen objects from decoded JSON, after checking every class it names against the allow-list."""
    import warnings

    from monty.json import MontyDecoder

    check_depth(obj, what, LIMITS.max_json_depth)
    check_monty_classes(obj, what)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return MontyDecoder().process_decoded(obj)
    except RecursionError:
        raise InputError(f"{what} is nested too deeply") from None
    except Exception as exc:  # a malformed dict of an allowed class
        raise InputError(f"{what} holds a malformed pymatgen object: {_one_line(exc, 120)}") from None
