"""Redaction of secrets, shared by the config printer, the operational log and the audit log.

`redact(value)` walks a config-like tree: a string value under a key that names a secret
(`password`, `token`, `credentials`, `secret`, `api_key`, `authorization`, `key`, htpasswd
`inline`, ...) becomes `[REDACTED]`; paths (`*_file`, `*_path`) and numbers stay. Every other string
goes through `redact_text`, which masks what a secret looks like in free text: `Authorization`
headers, `Bearer`/`Basic` credentials, JWTs, PEM private keys, `password=...`-style pairs and the
password in `scheme://user:password@host`.

Invariant: redaction only ever removes information; it never raises, whatever it is given.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from typing import Any

REDACTED = "[REDACTED]"

_SECRET_WORDS = frozenset(
    {"password", "passwd", "secret", "token", "tokens", "credentials", "credential", "apikey",
     "authorization", "cookie", "passphrase"}
)  # fmt: skip
_SECRET_KEYS = frozenset(
    {"key", "api_key", "private_key", "key_pem", "inline", "access_key", "secret_access_key",
     "session_token", "x-api-key", "dd-api-key", "client_secret", "x-scope-token"}
)  # fmt: skip


def _basic(match: re.Match[str]) -> str:
    # "basic authentication" is prose; only what decodes to `user:password` is a credential.
    try:
        decoded = base64.b64decode(match.group(3) + "=" * (-len(match.group(3)) % 4), validate=True)
    except (binascii.Error, ValueError):
        return match.group(0)
    return match.group(0) if b":" not in decoded else f"{match.group(1)}{match.group(2)}{REDACTED}"


def _bearer(match: re.Match[str]) -> str:
    # "invalid bearer token" is prose; after the header's own spelling `Bearer` anything is a
    # credential, after `bearer` only what has a digit, a capital or punctuation, or is long.
    value = match.group(3)
    if match.group(1) == "bearer" and len(value) < 20 and value.isalpha() and value.islower():
        return match.group(0)
    return f"{match.group(1)}{match.group(2)}{REDACTED}"


_TEXT_PATTERNS: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    (
        re.compile(
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
            re.DOTALL,
        ),
        "[REDACTED PRIVATE KEY]",
    ),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*"), "[REDACTED JWT]"),
    (
        re.compile(r"(?i)\b((?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)[^\r\n\"',}]+"),
        rf"\1{REDACTED}",
    ),
    (re.compile(r"\b([Bb]earer)(\s+)([A-Za-z0-9\-._~+/]+=*)"), _bearer),
    (re.compile(r"\b([Bb]asic)(\s+)([A-Za-z0-9+/]{4,}=*)"), _basic),
    (
        re.compile(
            r"(?i)\b((?:password|passwd|secret|api[_-]?key|access[_-]?key|client_secret)"
            r"[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,;}]+"
        ),
        rf"\1{REDACTED}",
    ),
    (re.compile(r"(?i)\b(\w*token=)[^\s\"'&,;}]+"), rf"\1{REDACTED}"),
    (re.compile(r"(://[^/\s:@]+:)[^/\s@]+@"), rf"\1{REDACTED}@"),
]


def is_secret_key(key: str) -> bool:
    """True when a config or header key names a secret (paths to secret files do not)."""
    lowered = key.lower()
    if lowered.endswith(("_file", "_path", "_dir", "_url")):
        return False
    if lowered in _SECRET_KEYS:
        return True
    return any(word in _SECRET_WORDS for word in re.split(r"[_\-.]", lowered))


def redact_text(text: str) -> str:
    """`text` with anything that looks like a credential masked."""
    try:
        for pattern, replacement in _TEXT_PATTERNS:
            text = pattern.sub(replacement, text)
    except Exception:  # defensive: redaction must never break a log line
        return REDACTED
    return text


def redact(value: Any, key: str = "") -> Any:
    """A copy of a config-like tree with secrets masked (see module docstring)."""
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        items = [redact(item, key) for item in value]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, str):
        if key and is_secret_key(key) and value:
            return REDACTED
        return redact_text(value)
    if isinstance(value, bytes):
        return REDACTED if key and is_secret_key(key) else value
    return value
