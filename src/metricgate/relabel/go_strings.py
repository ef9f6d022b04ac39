"""Go's string functions that relabel actions reproduce: `hashmod`'s MD5 bucket and the
`lowercase`/`uppercase` case mappings of Go's `strings.ToLower`/`strings.ToUpper`, which map each
character to one character (Python's full case mapping may give several)."""

from __future__ import annotations

import hashlib

__all__ = ["go_lower", "go_upper", "hashmod"]


def hashmod(value: str, modulus: int) -> int:
    """Prometheus' hashmod: MD5, bytes 8..15 as a big-endian uint64, modulo `modulus`."""
    digest = hashlib.md5(value.encode(), usedforsecurity=False).digest()
    return int.from_bytes(digest[8:], "big") % modulus


def go_lower(text: str) -> str:
    """Go's strings.ToLower: each character's simple lower case mapping."""
    if text.isascii():
        return text.lower()
    return "".join(_simple(char, char.lower(), {"\u0130": "i"}) for char in text)


def go_upper(text: str) -> str:
    """Go's strings.ToUpper: each character's simple upper case mapping (`ß` stays `ß`)."""
    if text.isascii():
        return text.upper()
    return "".join(_simple(char, char.upper(), {}) for char in text)


def _simple(char: str, mapped: str, special: dict[str, str]) -> str:
    # Python maps some characters to several (full case mapping); Go keeps those unchanged.
    return mapped if len(mapped) == 1 else special.get(char, char)
