"""Pages of several workers merged into one (`wire.exposition.merge`): every family once, under
one header, its samples together; checked against the page one process would render, and by
Prometheus' own parser (prometheus_client) and promtool where it is installed."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from metricgate.wire.exposition.merge import labelled, merge_pages, sum_pages

Family = tuple[str, str, list[tuple[str, float]]]


def render(families: list[Family], openmetrics: bool = False) -> str:
    out = []
    for name, kind, samples in sorted(families):
        out.append(f"# HELP {name} help of {name}\n# TYPE {name} {kind}\n")
        out.extend(f"{name}{labels} {value!r}\n" for labels, value in samples)
    if openmetrics:
        out.append("# EOF\n")
    return "".join(out)


@st.composite
def families(draw: st.DrawFn) -> list[Family]:
    names = draw(
        st.lists(st.from_regex(r"[a-z][a-z_]{0,8}", fullmatch=True), unique=True, max_size=8)
    )
    out = []
    for name in names:
        keys = draw(st.lists(st.integers(0, 20), unique=True, min_size=1, max_size=6))
        samples = [(f'{{k="v {key}"}}' if key else "", float(key)) for key in keys]
        out.append((name, draw(st.sampled_from(["gauge", "counter"])), samples))
    return out


@settings(max_examples=100, deadline=None)
@given(families(), st.integers(1, 4), st.randoms(use_true_random=False), st.booleans())
def test_split_pages_merge_into_the_whole(
    whole: list[Family], workers: int, rng: random.Random, openmetrics: bool
) -> None:
    parts: list[list[Family]] = [[] for _ in range(workers)]
    for name, kind, samples in whole:
        shares: list[list[tuple[str, float]]] = [[] for _ in range(workers)]
        for sample in samples:
            shares[rng.randrange(workers)].append(sample)
            if rng.random() < 0.2:  # the same series on two pages (target_info): shown once
                shares[rng.randrange(workers)].append(sample)
        for part, share in zip(parts, shares, strict=True):
            if share:
                part.append((name, kind, list(dict.fromkeys(share))))
    merged = merge_pages([render(part, openmetrics) for part in parts], openmetrics)
    expected = {(name, labels, value) for name, _, samples in whole for labels, value in samples}
    assert _samples(merged) == expected
    headers = [line.split()[2] for line in merged.splitlines() if line.startswith("# TYPE")]
    assert headers == sorted({name for name, _, _ in whole})
    if openmetrics:
        assert merged.endswith("# EOF\n") and merged.count("# EOF") == 1
    parsed = {f.name for f in text_string_to_metric_families(merged.replace("# EOF\n", ""))}
    assert len(parsed) == len(whole)


def _samples(page: str) -> set[tuple[str, str, float]]:
    out = set()
    for line in page.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            brace = series.find("{")
            name, labels = (series, "") if brace < 0 else (series[:brace], series[brace:])
            out.add((name, labels, float(value)))
    return out


def test_summed_pages_add_counters_and_keep_times_and_states_sensible() -> None:
    first = (
        "# HELP points_total p\n# TYPE points_total counter\n"
        'points_total{receiver="otlp"} 3.0\npoints_total{receiver="rw"} 1.0\n'
        "# HELP points_created p\n# TYPE points_created gauge\npoints_created 100.0\n"
        "# HELP last_success_timestamp_seconds t\n# TYPE last_success_timestamp_seconds gauge\n"
        "last_success_timestamp_seconds 50.0\n"
        "# HELP reload_successful s\n# TYPE reload_successful gauge\nreload_successful 1.0\n"
    )
    second = (
        "# HELP points_total p\n# TYPE points_total counter\n"
        'points_total{receiver="otlp"} 4.5\n'
        "# HELP last_success_timestamp_seconds t\n# TYPE last_success_timestamp_seconds gauge\n"
        "last_success_timestamp_seconds 70.0\n"
        "# HELP reload_successful s\n# TYPE reload_successful gauge\nreload_successful 0.0\n"
        "# HELP only_here o\n# TYPE only_here gauge\nonly_here NaN\n"
    )
    summed = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(sum_pages([first, second]))
        for s in f.samples
    }
    assert summed[("points_total", (("receiver", "otlp"),))] == 7.5
    assert summed[("points_total", (("receiver", "rw"),))] == 1.0
    assert summed[("last_success_timestamp_seconds", ())] == 70.0
    assert summed[("reload_successful", ())] == 0.0
    assert summed[("points_created", ())] == 100.0
    assert str(summed[("only_here", ())]) == "nan"


def test_labelled_puts_the_label_on_every_sample() -> None:
    page = (
        '# HELP a a\n# TYPE a gauge\na 1.0\n# HELP b b\n# TYPE b gauge\nb{x="y z"} 2.0\nb{} 3.0\n'
    )
    samples = [
        (s.name, s.labels)
        for f in text_string_to_metric_families(labelled(page, "worker", "1"))
        for s in f.samples
    ]
    assert samples == [
        ("a", {"worker": "1"}),
        ("b", {"worker": "1", "x": "y z"}),
        ("b", {"worker": "1"}),
    ]
