"""What the polling mechanisms share: change tracking and quiet failure logs."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metricgate.discovery import TargetGroup
from metricgate.discovery.refresh import FailureLog, GroupTable

_groups = st.dictionaries(
    st.sampled_from(["a", "b", "c", "d"]),
    st.lists(st.sampled_from(["h1:1", "h2:2", "h3:3"]), max_size=2, unique=True),
)


def _as_groups(state: dict[str, list[str]]) -> list[TargetGroup]:
    return [
        TargetGroup(source, tuple({"__address__": a} for a in addresses))
        for source, addresses in state.items()
    ]


@given(st.lists(_groups, min_size=1, max_size=6))
def test_replaying_the_changes_gives_each_state(states: list[dict[str, list[str]]]) -> None:
    table = GroupTable()
    seen: dict[str, TargetGroup] = {}
    for state in states:
        changed = table.replace(_as_groups(state))
        for group in changed:
            assert group.targets or group.source in seen, "removed a group never sent"
            if group.targets:
                assert seen.get(group.source) != group, "sent an unchanged group"
                seen[group.source] = group
            else:
                del seen[group.source]
        expected = {g.source: g for g in _as_groups(state) if g.targets}
        assert seen == expected == table.groups


def test_failures_are_logged_once_per_error_and_again_after_the_repeat_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    failures = FailureLog("dns", repeat=300.0, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, "metricgate.discovery"):
        for _ in range(5):
            failures.failed("a.example", "SERVFAIL")
            now[0] += 10
        failures.failed("a.example", "timeout")  # a different error is news
        failures.failed("b.example", "timeout")  # so is another source
        now[0] += 300
        failures.failed("a.example", "timeout")  # still failing, five minutes on
        failures.succeeded("a.example")
        failures.succeeded("a.example")  # said once
        failures.succeeded("c.example")  # never failed: nothing to say
    assert [r.getMessage() for r in caplog.records] == [
        "dns discovery failed for a.example: SERVFAIL; keeping its last targets",
        "dns discovery failed for a.example: timeout; keeping its last targets",
        "dns discovery failed for b.example: timeout; keeping its last targets",
        "dns discovery failed for a.example: timeout; keeping its last targets",
        "dns discovery works again for a.example",
    ]
    assert caplog.records[0].__dict__["source"] == "a.example"
