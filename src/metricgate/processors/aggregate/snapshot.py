"""The aggregate processor's state across a graceful restart (`metricgate.pipeline.snapshots`).

Kept per rule: every slot's running totals and their start (`total*` outputs continue, with the
same start timestamp), its `histogram_bucket` counts, and every input's baseline (the next
cumulative sample is a delta, not a first sample). With `flush_on_shutdown: false` the open
window's statistics are kept too (shutdown did not emit them), and they continue if the gateway is
back before that window ends; with `flush_on_shutdown: true` (the default) shutdown emitted the
partial window, so it is not kept (that would count it twice).

Slots are JSON records; inputs are points of the snapshot batch (their series), whose timestamp
is the index of their JSON record (rule, slot and baseline).

Invariant: a restored input points at a restored slot of the same rule, as `Rule.new_input` would
have made it.
"""

from __future__ import annotations

from typing import Any

from metricgate.model import HistogramPoint, MetricPoints
from metricgate.pipeline.snapshots import SnapshotPoints, StateSnapshot, empty_value, points
from metricgate.processors.aggregate.rule import Rule
from metricgate.processors.aggregate.state import Group, HistogramSum, Input

_WINDOW = ("inc", "inc_prom", "n", "nseries", "sum", "min", "max", "last", "last_ts", "mean", "m2")


def snapshot(rules: list[Rule]) -> StateSnapshot:
    """The state of `rules` (see the module docstring)."""
    out = SnapshotPoints()
    records: list[list[Any]] = []
    kept: list[dict[str, Any]] = []
    for index, rule in enumerate(rules):
        window = not rule.config.flush_on_shutdown
        slots = {id(group): n for n, group in enumerate(rule.groups.values())}
        kept.append(
            {
                "win": rule.win,
                "first_window": rule.first_window,
                "started_ns": rule.started_ns,
                "groups": [_group(k, g, window) for k, g in rule.groups.items()],
            }
        )
        for series, inp in rule.inputs.items():
            touched = window and inp.group.touched is not None and inp in inp.group.touched
            out.add(series, empty_value(series.metric.kind), len(records))
            records.append([index, slots[id(inp.group)], *_input(inp, window), touched])
    return StateSnapshot({"rules": kept, "inputs": records}, out.batch())


def restore(rules: list[Rule], state: StateSnapshot) -> None:
    """Take back what `snapshot` kept; `ValueError` (or a lookup error) if it does not fit, and
    then the rules are left as they were."""
    before = [(rule.started_ns, rule.first_window) for rule in rules]
    try:
        _restore(rules, state)
    except Exception:
        for rule, (started_ns, first_window) in zip(rules, before, strict=True):
            rule.inputs.clear()
            rule.groups.clear()
            rule.started_ns, rule.first_window = started_ns, first_window
        raise


def _restore(rules: list[Rule], state: StateSnapshot) -> None:
    kept = state.fields["rules"]
    records = state.fields["inputs"]
    if len(kept) != len(rules):
        raise ValueError(f"{len(kept)} rules kept, {len(rules)} configured")
    windows: list[bool] = []
    slots: list[list[Group]] = []
    for rule, record in zip(rules, kept, strict=True):
        window = not rule.config.flush_on_shutdown and record["win"] == rule.win
        windows.append(window)
        rule.started_ns = int(record["started_ns"])
        if window:
            rule.first_window = bool(record["first_window"])
        groups = []
        for name, labels, value_class, fields in record["groups"]:
            key = (name, tuple((k, v) for k, v in labels), value_class)
            group = rule.groups[key] = _restored_group(rule, key[1], fields, window)
            groups.append(group)
        slots.append(groups)
    for group_points in state.batch.metrics:
        _restore_inputs(rules, group_points, records, slots, windows)


def _restore_inputs(
    rules: list[Rule],
    group_points: MetricPoints,
    records: list[list[Any]],
    slots: list[list[Group]],
    windows: list[bool],
) -> None:
    for series, _, index, _ in points(group_points):
        rule_index, slot, prev, prev_hist, prev_ts, prev_start, *window, touched = records[index]
        rule = rules[rule_index]
        group = slots[rule_index][slot]
        inp = rule.inputs[series] = Input(rule, group)
        inp.prev = prev
        if prev_hist is not None:
            count, total, bounds, counts, low, high = prev_hist
            inp.prev_hist = HistogramPoint(count, total, tuple(bounds), tuple(counts), low, high)
        inp.prev_ts, inp.prev_start = prev_ts, prev_start
        if windows[rule_index] and window:
            inp.win, inp.win_inc, inp.win_ref, inp.win_last = window
            if touched:
                if group.touched is None:
                    group.touched = []
                group.touched.append(inp)


def _group(key: tuple[str, Any, str], group: Group, window: bool) -> list[Any]:
    fields: dict[str, Any] = {
        "created": group.created,
        "total": group.total,
        "total_prom": group.total_prom,
        "bounds": group.bounds,
        "h_total": _sum(group.h_total),
        "h_total_prom": _sum(group.h_total_prom),
        "vm": None if group.vm is None else list(group.vm.items()),
    }
    if window:
        fields["win"] = group.win
        fields.update((name, getattr(group, name)) for name in _WINDOW)
        fields["samples"] = group.samples
        fields["unique"] = None if group.unique is None else list(group.unique)
        fields["h_inc"] = _sum(group.h_inc)
        fields["h_inc_prom"] = _sum(group.h_inc_prom)
    name, labels, value_class = key
    return [name, labels, value_class, fields]


def _restored_group(rule: Rule, labels: Any, fields: dict[str, Any], window: bool) -> Group:
    group = Group(labels, int(fields["created"]), len(rule.outputs))
    group.total = float(fields["total"])
    group.total_prom = float(fields["total_prom"])
    bounds = fields["bounds"]
    group.bounds = None if bounds is None else tuple(bounds)
    group.h_total = _histogram_sum(fields["h_total"])
    group.h_total_prom = _histogram_sum(fields["h_total_prom"])
    vm = fields["vm"]
    group.vm = None if vm is None else {int(k): int(v) for k, v in vm}
    if window and "win" in fields:
        group.start_window(int(fields["win"]))
        for name in _WINDOW:
            setattr(group, name, fields[name])
        group.samples = fields["samples"]
        unique = fields["unique"]
        group.unique = None if unique is None else set(unique)
        group.h_inc = _histogram_sum(fields["h_inc"])
        group.h_inc_prom = _histogram_sum(fields["h_inc_prom"])
    return group


def _input(inp: Input, window: bool) -> list[Any]:
    hist = inp.prev_hist
    kept: list[Any] = [
        inp.prev,
        None
        if hist is None
        else [hist.count, hist.sum, hist.bounds, hist.bucket_counts, hist.min, hist.max],
        inp.prev_ts,
        inp.prev_start,
    ]
    if window:
        kept += [inp.win, inp.win_inc, inp.win_ref, inp.win_last]
    return kept


def _sum(total: HistogramSum | None) -> list[Any] | None:
    if total is None:
        return None
    return [total.counts, total.count, total.sum, total.sum_missing]


def _histogram_sum(kept: list[Any] | None) -> HistogramSum | None:
    if kept is None:
        return None
    counts, count, total, missing = kept
    out = HistogramSum(len(counts))
    out.counts = [int(c) for c in counts]
    out.count, out.sum, out.sum_missing = int(count), float(total), bool(missing)
    return out
