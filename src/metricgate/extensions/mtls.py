"""`mtls`: the client certificate a mutual-TLS listener verified, mapped to a principal.

The TLS layer (`tls.client_ca_file`) already checked the chain and validity during the handshake;
this authenticator only reads who the certificate names: the subject's common name, or the first
DNS, URI or e-mail subject alternative name, as `principal_from` says, and optionally a tenant
from the subject's organization (O) or organizational unit (OU) or a SAN. A listener without
mutual TLS never has a certificate, so every request would get 401: config validation refuses that
combination (`requires_client_certificate`). Its 401 answers carry no `WWW-Authenticate`
challenge, since no HTTP authentication scheme names client certificates.

Invariant: the principal comes only from a certificate the TLS layer verified; this module never
accepts identity from a header.
"""

from __future__ import annotations

import datetime
from collections.abc import Hashable
from typing import Any, ClassVar, Literal

from cryptography import x509
from cryptography.x509.oid import NameOID

from metricgate.extensions.authenticator import (
    Authenticator,
    AuthenticatorConfig,
    CredentialRefused,
    Headers,
)
from metricgate.extensions.principal import Principal

Field = Literal["subject_cn", "subject_o", "subject_ou", "san_dns", "san_uri", "san_email"]


class MtlsAuthConfig(AuthenticatorConfig):
    """`mtls`: which certificate field names the principal and which names the tenant."""

    requires_client_certificate: ClassVar[bool] = True
    """The loader refuses this authenticator on a listener without `tls.client_ca_file`."""

    principal_from: Field = "subject_cn"
    tenant_from: Field | Literal[""] = ""
    """Empty: the tenants section decides (by default the principal's own name)."""


def certificate_field(certificate: x509.Certificate, field: str) -> str:
    """The first value of `field` in the certificate, or "" when it has none."""
    if field.startswith("subject_"):
        oid = {
            "subject_cn": NameOID.COMMON_NAME,
            "subject_o": NameOID.ORGANIZATION_NAME,
            "subject_ou": NameOID.ORGANIZATIONAL_UNIT_NAME,
        }[field]
        values = certificate.subject.get_attributes_for_oid(oid)
        return str(values[0].value) if values else ""
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ""
    if field == "san_dns":
        found = names.get_values_for_type(x509.DNSName)
    elif field == "san_uri":
        found = names.get_values_for_type(x509.UniformResourceIdentifier)
    else:
        found = names.get_values_for_type(x509.RFC822Name)
    return str(found[0]) if found else ""


def load_certificate(data: bytes) -> x509.Certificate:
    """A certificate from DER or PEM bytes; ValueError when it is neither."""
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


class MtlsAuthenticator(Authenticator):
    """Maps a verified client certificate to a principal (see module docstring)."""

    challenge = ""  # no HTTP authentication scheme exists for client certificates
    requires_client_certificate = True

    def __init__(self, extension_id: str, config: MtlsAuthConfig) -> None:
        super().__init__(extension_id, config)
        self.config: MtlsAuthConfig = config

    def credential(self, headers: Headers, peer_cert: bytes | None) -> Hashable | None:
        return peer_cert or None

    async def verify(self, credential: Any) -> tuple[Principal, float]:
        try:
            certificate = load_certificate(bytes(credential))
        except ValueError:
            raise CredentialRefused("the client certificate cannot be parsed") from None
        name = certificate_field(certificate, self.config.principal_from)
        if not name:
            raise CredentialRefused(
                f"the client certificate has no {self.config.principal_from} to name a principal"
            )
        tenant = ""
        if self.config.tenant_from:
            tenant = certificate_field(certificate, self.config.tenant_from)
            if not tenant:
                raise CredentialRefused(
                    f"the client certificate has no {self.config.tenant_from} to name a tenant"
                )
        subject = certificate.subject.rfc4514_string()
        remaining = (
            certificate.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
        ).total_seconds()
        if remaining <= 0:
            raise CredentialRefused("the client certificate has expired")
        return Principal(name, self.extension_id, tenant, (("subject", subject),)), remaining
