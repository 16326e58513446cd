"""A small, deterministic YAML writer for JSON-like data: the AsyncAPI document's text.

The protocol package depends on no YAML library. Strings are written as JSON double-quoted
scalars or literal blocks, and keys and floats are spelt so that YAML 1.1 readers (PyYAML) load
the text back to the same value. Pure, no I/O.
"""

import json
import math
import re
from typing import Any

_PLAIN_KEY = re.compile(r"[A-Za-z_$][A-Za-z0-9_$.-]*")
# YAML 1.1 readers (PyYAML) take these as booleans or null when unquoted.
_RESERVED = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})
_BLOCK_SAFE = re.compile(r"^[ -~\n]*$")


def _key(key: str) -> str:
    # fullmatch: with match, "$" also matches before a trailing newline, so "A\n" passed as plain.
    if _PLAIN_KEY.fullmatch(key) and key.lower() not in _RESERVED:
        return key
    return _scalar(key)


def _block_lines(text: str) -> list[str] | None:
    """The lines of ``text`` for a literal block scalar, or ``None`` if it must be quoted."""
    if "\n" not in text.rstrip("\n") or text.endswith("\n\n") or not _BLOCK_SAFE.match(text):
        return None
    lines = text.removesuffix("\n").split("\n")
    if lines[0].startswith(" ") or any(line != line.rstrip() for line in lines):
        return None
    return lines


# Characters YAML does not allow raw, or reads as line breaks, inside a double-quoted scalar.
_YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        # A JSON string is a YAML double-quoted scalar; escape what YAML treats differently.
        text = json.dumps(value, ensure_ascii=False)
        return _YAML_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} has no JSON representation")
        text = repr(value)
        # YAML 1.1 readers (PyYAML) only take a float with a dot: 1e+16 must be 1.0e+16.
        mantissa, e, exponent = text.partition("e")
        return f"{mantissa}.0{e}{exponent}" if e and "." not in mantissa else text
    if isinstance(value, bool | int):
        return json.dumps(value)
    raise TypeError(f"cannot write {type(value).__name__} as YAML")


def _node(value: Any, indent: int) -> tuple[str, list[str]]:
    """What follows ``key:`` or ``-`` on the same line, and the lines nested below it."""
    pad = " " * indent
    if isinstance(value, dict) and value:
        return "", _mapping(value, indent)
    if isinstance(value, list) and value:
        return "", _sequence(value, indent)
    if isinstance(value, dict | list):
        return " {}" if isinstance(value, dict) else " []", []
    if isinstance(value, str) and (lines := _block_lines(value)) is not None:
        chomp = "" if value.endswith("\n") else "-"
        return f" |{chomp}", [pad + line if line else "" for line in lines]
    return " " + _scalar(value), []


def _mapping(value: dict[str, Any], indent: int) -> list[str]:
    out = []
    for k, v in value.items():
        inline, below = _node(v, indent + 2)
        out.append(f"{' ' * indent}{_key(k)}:{inline}")
        out.extend(below)
    return out


def _sequence(value: list[Any], indent: int) -> list[str]:
    out = []
    for item in value:
        inline, below = _node(item, indent + 2)
        if inline or not below:
            out.append(f"{' ' * indent}-{inline}")
            out.extend(below)
        else:  # a nested mapping or sequence starts on the dash's line
            out.append(f"{' ' * indent}- {below[0].lstrip()}")
            out.extend(below[1:])
    return out


def dump_yaml(value: dict[str, Any]) -> str:
    """Deterministic YAML text of a JSON-like mapping (key order kept), trailing newline."""
    return "\n".join(_mapping(value, 0)) + "\n"
