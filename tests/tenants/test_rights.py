"""Metric-name rights: anchored regexes on both name forms, remembered verdicts, partial batches."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from metricgate.model import Batch
from metricgate.tenants import MetricRights, refusal_message
from tests.support.batches import number_batch


def test_allow_and_deny_on_both_name_forms() -> None:
    rights = MetricRights(allow=["agent_.*", "http_.*"], deny=["http_secret_.*"])
    assert rights.allowed("agent_tokens_total")
    assert rights.allowed("http.server.duration")  # OTLP name, Prometheus form http_server_duration
    assert not rights.allowed("my_http_requests")  # anchored: no substring match
    assert not rights.allowed("http_secret_keys")
    assert not rights.allowed("http.secret.keys")
    assert not rights.allowed("db_queries")
    assert MetricRights().unrestricted and MetricRights().allowed("anything")


@given(
    name=st.text(alphabet="abc_.:x", max_size=12),
    allow=st.lists(st.sampled_from(["a.*", "b", "x_.*", "(a|b)c", ".*:.*"]), max_size=3),
    deny=st.lists(st.sampled_from(["ab.*", "c", ".*_x"]), max_size=2),
)
def test_verdicts_match_the_definition_and_are_stable(
    name: str, allow: list[str], deny: list[str]
) -> None:
    rights = MetricRights(allow, deny)
    forms = {name, re.sub(r"[^A-Za-z0-9:]+", "_", name).strip("_")}
    expected = not any(re.fullmatch(d, f) for d in deny for f in forms) and (
        not allow or any(re.fullmatch(a, f) for a in allow for f in forms)
    )
    if not re.search(r"[A-Za-z0-9:]", name):
        forms = {name}
        expected = not any(re.fullmatch(d, name) for d in deny) and (
            not allow or any(re.fullmatch(a, name) for a in allow)
        )
    assert rights.allowed(name) is expected
    assert rights.allowed(name) is expected  # remembered


def test_filter_keeps_allowed_metrics_and_counts_refused_points() -> None:
    allowed = number_batch({"a": 1, "b": 2}, name="agent_calls")
    refused = number_batch({"a": 1, "b": 2, "c": 3}, name="db_queries")
    batch = Batch(allowed.metrics + refused.metrics)
    rights = MetricRights(allow=["agent_.*"])
    kept, counts = rights.filter(batch)
    assert [m.metric.name for m in kept.metrics] == ["agent_calls"]
    assert counts == {"db_queries": 3}
    assert refusal_message("team-a", counts) == (
        "tenant 'team-a' may not write metrics 'db_queries' (3 points); the rest was accepted"
    )
    same, none = rights.filter(allowed)
    assert same is allowed and not none
