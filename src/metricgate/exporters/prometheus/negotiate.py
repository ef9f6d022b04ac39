"""Content negotiation for the scrape page: which format, and whether to gzip.

Prometheus sends an `Accept` header listing the formats it takes with q-weights, OpenMetrics
first (`application/openmetrics-text;version=1.0.0;q=0.5,...,text/plain;version=0.0.4;q=0.3,
*/*;q=0.2`). We serve OpenMetrics when it is enabled and weighted at least as high as the text
format, the text format otherwise (including for `*/*`, a missing header, or protobuf-only asks).

Invariant: these functions never raise on a malformed header; they fall back to the text format
and no compression.
"""

from __future__ import annotations


def _media_ranges(header: str) -> list[tuple[str, float]]:
    """(media type, q) pairs of an `Accept` or `Accept-Encoding` header, lower-cased."""
    ranges = []
    for item in header.split(","):
        parts = [p.strip() for p in item.split(";")]
        if not parts[0]:
            continue
        q = 1.0
        for param in parts[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        ranges.append((parts[0].lower(), q))
    return ranges


def wants_openmetrics(accept: str) -> bool:
    """True when `accept` weights OpenMetrics text at least as high as the text format."""
    best_openmetrics = 0.0
    best_text = 0.0
    for media, q in _media_ranges(accept):
        if media == "application/openmetrics-text":
            best_openmetrics = max(best_openmetrics, q)
        elif media in ("text/plain", "text/*", "*/*"):
            best_text = max(best_text, q)
    return best_openmetrics > 0 and best_openmetrics >= best_text


def accepts_gzip(accept_encoding: str) -> bool:
    """True when `accept_encoding` allows gzip (explicitly or through `*`)."""
    for coding, q in _media_ranges(accept_encoding):
        if coding in ("gzip", "x-gzip", "*") and q > 0:
            return True
    return False
