"""`tls`: the client TLS settings every exporter that dials a backend takes, and their context."""

from __future__ import annotations

import ssl
from typing import Self

from pydantic import model_validator

from metricgate.config.types import ComponentConfig


class ClientTls(ComponentConfig):
    """`tls`: CA bundle, client certificate and key, and (for tests only) skipping verification."""

    ca_file: str = ""
    """PEM file of CAs to trust instead of the system's."""
    cert_file: str = ""
    """Client certificate (PEM) for mutual TLS; needs `key_file`."""
    key_file: str = ""
    insecure_skip_verify: bool = False
    """Do not verify the server's certificate."""

    @model_validator(mode="after")
    def _pair(self) -> Self:
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("cert_file and key_file must be given together")
        return self

    def ssl_context(self) -> ssl.SSLContext:
        """The client context these settings describe (files are read now)."""
        context = ssl.create_default_context(cafile=self.ca_file or None)
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        if self.insecure_skip_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context
