"""Who sent a request: the `Principal` an authenticator vouches for, and the events it reports.

Invariant: a `Principal` never holds a credential (token, password, raw header or JWT); it is
safe to log, to put in an audit record and to hand to every component.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated client: its name, the tenant its credential names (if any), and how.

    `tenant` is empty when the credential names none; the tenants section then decides (by default
    the tenant is the principal's own name). `attributes` are non-secret facts (JWT subject and
    groups, certificate subject) for routing and audit.
    """

    name: str
    authenticator: str
    tenant: str = ""
    attributes: tuple[tuple[str, str], ...] = field(default=())


@dataclass(frozen=True, slots=True)
class AuthEvent:
    """Something an authenticator saw, for the audit log: a verified credential or a refusal.

    `kind` is `auth_success` (only when a credential was verified, not on cache hits) or
    `auth_failure` (from authenticators), `access_denied` or `tenant_limit` (from listener
    guards, with the `tenant` when it was resolved); `reason` is the message the client got.
    Never carries the credential.
    """

    kind: str
    authenticator: str
    address: str
    principal: str = ""
    reason: str = ""
    tenant: str = ""
