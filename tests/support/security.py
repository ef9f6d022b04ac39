"""Credentials for tests of the security layer: certificates, htpasswd lines, token files, and an
in-process gateway built from a config with `extensions:` and `tenants:`.

`make_pki(directory)` writes a CA, a server certificate for 127.0.0.1/localhost, client
certificates (CN = principal; one expired; one from another CA) and returns their paths.
`secured(config_text)` runs a `Service` in the test's event loop with an audit log in memory.
"""

from __future__ import annotations

import io
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt

from metricgate.config import load_config_text
from metricgate.config.audit import AuditConfig
from metricgate.extensions import default_extension_registry
from metricgate.pipeline.service import Service
from metricgate.telemetry.audit import AuditLog
from tests.support.capture import registry_with_capture
from tests.support.x509 import CertificateAuthority


@dataclass
class Pki:
    """Paths of a test PKI: `ca`, `server` / `server_key`, and per client name (cert, key)."""

    ca: str
    server: str
    server_key: str
    clients: dict[str, tuple[str, str]] = field(default_factory=dict)
    other_ca: str = ""
    """A second CA, trusted by nobody: a client certificate from it is refused."""

    def client(self, name: str) -> tuple[str, str]:
        return self.clients[name]


def make_pki(directory: Path, clients: tuple[str, ...] = ("team-a", "team-b")) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    authority = CertificateAuthority("metricgate-test-ca")
    server = authority.issue("localhost", dns=["localhost"], ips=["127.0.0.1"])
    server_cert, server_key = server.write(directory, "server")
    pki = Pki(authority.write(directory, "ca"), server_cert, server_key)
    for name in clients:
        pki.clients[name] = authority.issue(name).write(directory, f"client-{name}")
    pki.clients["expired"] = authority.issue("team-a", expired=True).write(directory, "expired")
    stranger = CertificateAuthority("stranger-ca")
    pki.other_ca = stranger.write(directory, "other-ca")
    pki.clients["stranger"] = stranger.issue("team-a").write(directory, "client-stranger")
    return pki


def htpasswd(users: dict[str, str]) -> str:
    """htpasswd lines with bcrypt hashes (cost 4: fast in tests, still real bcrypt)."""
    return "".join(
        f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()}\n"
        for user, password in users.items()
    )


def replace_file(path: Path, text: str) -> None:
    """Write `text` to `path` atomically, as a deployment tool would (no half-read file)."""
    staged = path.with_suffix(path.suffix + ".new")
    staged.write_text(text)
    os.replace(staged, path)


@dataclass
class SecuredGateway:
    """A started in-process service and its in-memory audit log."""

    service: Service
    audit: io.StringIO

    def counter(self, name: str, **labels: str) -> float:
        return self.service.telemetry.registry.get_sample_value(name, labels) or 0.0

    def port(self, receiver: str, protocol: str = "") -> int:
        component = self.service.receivers[receiver]
        port = getattr(component, f"{protocol}_port" if protocol else "port")
        assert isinstance(port, int)
        return port


@asynccontextmanager
async def secured(config_text: str) -> AsyncIterator[SecuredGateway]:
    config = load_config_text(
        config_text, registry_with_capture(), {}, extensions=default_extension_registry()
    )
    stream = io.StringIO()
    audit = AuditLog(AuditConfig(aggregate_interval=3600), stream=stream)
    service = Service(config, audit=audit)
    await service.start()
    try:
        yield SecuredGateway(service, stream)
    finally:
        await service.shutdown()
