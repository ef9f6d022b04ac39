"""Which exposition format a `Content-Type` names, and what a scraper asks for.

Formats: `text` (Prometheus text 0.0.4; also a blank or unknown type, as Prometheus 2.x reads
it), `openmetrics` (`application/openmetrics-text`, versions 0.0.1 and 1.0.0) and `protobuf` (the
delimited `io.prometheus.client.MetricFamily` stream).

Invariant: `format_of` never raises; anything it does not recognise is `text`, and only an
explicit protobuf type with another `proto=` or `encoding=` is refused (None).
"""

from __future__ import annotations

from typing import Final, Literal

Format = Literal["text", "openmetrics", "protobuf"]

SCRAPE_ACCEPT: Final = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
"""Prometheus 2.42's `Accept` header for scrapes (protobuf is only asked for when enabled)."""
SCRAPE_ACCEPT_PROTOBUF: Final = (
    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;"
    "q=0.9," + SCRAPE_ACCEPT.replace("version=1.0.0,", "version=1.0.0;q=0.8,", 1)
)


def format_of(content_type: str) -> Format | None:
    """The format of a body of `content_type` (see the module docstring)."""
    media, _, parameters = content_type.partition(";")
    media = media.strip().lower()
    if media == "application/openmetrics-text":
        return "openmetrics"
    if media == "application/vnd.google.protobuf":
        params = {}
        for part in parameters.split(";"):
            key, _, value = part.partition("=")
            params[key.strip().lower()] = value.strip().strip('"')
        proto = params.get("proto", "io.prometheus.client.MetricFamily")
        encoding = params.get("encoding", "delimited")
        if proto == "io.prometheus.client.MetricFamily" and encoding == "delimited":
            return "protobuf"
        return None
    return "text"
