"""One real Prometheus for the catalog tests, used to check that generated PromQL parses."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.support.prometheus import PrometheusServer, run_prometheus

# Grafana's built-in interval variables, and what they stand for in a check query.
_GRAFANA_INTERVALS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}
_VARIABLE = re.compile(r"\$\{?(\w+)\}?")


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """A Prometheus with nothing to scrape: queries parse and evaluate to empty results."""
    with run_prometheus(tmp_path_factory.mktemp("catalog-prometheus")) as server:
        yield server


def as_plain_promql(expr: str) -> str:
    """`expr` with Grafana's interval variables replaced by durations and every template
    variable by `.*` (what "All" sends)."""
    for variable, duration in _GRAFANA_INTERVALS.items():
        expr = expr.replace(variable, duration)
    return _VARIABLE.sub(".*", expr)
