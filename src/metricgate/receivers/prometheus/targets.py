"""Scrape targets: their labels (Prometheus' `PopulateLabels`), URL, identity, and sample labels.

From a discovered target (`__address__`, `__meta_*`, ...) and its group's labels:
1. group labels, overridden by the target's; then, where unset, `job`, `__scheme__`,
   `__metrics_path__`, `__scrape_interval__`, `__scrape_timeout__` and `__param_<name>` (first
   value of each `params` entry);
2. `relabel_configs` (a dropped target is listed as dropped, with the rule);
3. no `__address__`, a bad `__scrape_interval__`/`__scrape_timeout__` or a timeout over the
   interval drops the target with a reason; a port is added by scheme when the address has none
   (80/443, as Prometheus 2.42);
4. labels starting with `__` are removed, and `instance` defaults to `__address__`.
The URL is `__scheme__://__address____metrics_path__?__param_*`. Two targets with the same labels
and URL are one target (the first is kept).

`sample_labels` builds the per-sample label function of a target: the target's labels win over a
sample's (the sample's become `exported_<name>`) unless `honor_labels`, then
`metric_relabel_configs`, then the label limits.

Invariant: a `Target` is immutable once built; its `key` is what identifies it across discovery
updates, so an unchanged target keeps its scrape loop (and its staleness state).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlencode

from metricgate.config.types import parse_duration
from metricgate.discovery import TargetGroup
from metricgate.receivers.prometheus.config import GlobalConfig, ScrapeConfig
from metricgate.relabel import Drop, RuleSet

Labels = tuple[tuple[str, str], ...]

_DEFAULT_PORTS: Final = {"http": "80", "https": "443"}


class LimitError(Exception):
    """A sample breaks a label limit: the whole scrape fails (as in Prometheus)."""


@dataclass(frozen=True, slots=True)
class Target:
    """One target of a job, after relabeling."""

    job: str
    labels: Labels
    """Final labels (no `__` labels): what every scraped series gets."""
    discovered: Labels
    """Labels before relabeling (with `__meta_*`), for /debug/targets."""
    url: str
    interval: float
    timeout: float
    key: str
    """Identity: a hash of the labels and the URL."""

    @property
    def instance(self) -> str:
        return dict(self.labels).get("instance", "")


@dataclass(frozen=True, slots=True)
class DroppedTarget:
    """A discovered target that relabeling (or a bad label) dropped, and why."""

    job: str
    discovered: Labels
    reason: str


def build_targets(
    groups: list[TargetGroup], job: ScrapeConfig, defaults: GlobalConfig, rules: RuleSet
) -> tuple[list[Target], list[DroppedTarget]]:
    """The targets (deduplicated, in order) and dropped targets of a job's current groups."""
    targets: dict[str, Target] = {}
    dropped: list[DroppedTarget] = []
    for group in groups:
        for target_labels in group.targets:
            merged = dict(group.labels)
            merged.update(target_labels)
            found = _target(merged, job, defaults, rules)
            if isinstance(found, DroppedTarget):
                dropped.append(found)
            else:
                targets.setdefault(found.key, found)
    return list(targets.values()), dropped


def _target(
    labels: dict[str, str], job: ScrapeConfig, defaults: GlobalConfig, rules: RuleSet
) -> Target | DroppedTarget:
    interval, timeout = job.interval(defaults), job.timeout(defaults)
    labels.setdefault("job", job.job_name)
    labels.setdefault("__scheme__", job.scheme)
    labels.setdefault("__metrics_path__", job.metrics_path)
    labels.setdefault("__scrape_interval__", _duration_text(interval))
    labels.setdefault("__scrape_timeout__", _duration_text(timeout))
    for name, values in job.params.items():
        if values:
            labels.setdefault(f"__param_{name}", values[0])
    discovered = tuple(sorted(labels.items()))
    relabeled = rules.apply_target(discovered) if rules.rules else discovered
    if isinstance(relabeled, Drop):
        return DroppedTarget(job.job_name, discovered, relabeled.detail)
    final = dict(relabeled)
    address = final.get("__address__", "")
    if not address:
        return DroppedTarget(job.job_name, discovered, "no __address__ label")
    scheme = final.get("__scheme__", job.scheme)
    if ":" not in address.rsplit("]", 1)[-1]:
        address = f"{address}:{_DEFAULT_PORTS.get(scheme, '80')}"
        final["__address__"] = address
    try:
        interval = parse_duration(final.get("__scrape_interval__", ""))
        timeout = parse_duration(final.get("__scrape_timeout__", ""))
    except ValueError as exc:
        return DroppedTarget(job.job_name, discovered, f"bad scrape interval or timeout: {exc}")
    if interval <= 0 or timeout <= 0 or timeout > interval:
        reason = f"scrape timeout {timeout}s must be positive and at most the interval {interval}s"
        return DroppedTarget(job.job_name, discovered, reason)
    params = {name[8:]: value for name, value in final.items() if name.startswith("__param_")}
    url = f"{scheme}://{address}{final.get('__metrics_path__', job.metrics_path)}"
    if params:
        url += "?" + urlencode(params)
    public = {name: value for name, value in final.items() if not name.startswith("__")}
    public.setdefault("instance", address)
    kept = tuple(sorted(public.items()))
    key = hashlib.blake2b(repr((kept, url)).encode(), digest_size=8).hexdigest()
    return Target(job.job_name, kept, discovered, url, interval, timeout, key)


def _duration_text(seconds: float) -> str:
    """Prometheus' duration text: `15s`, `1m`, `1m30s`, `500ms`."""
    millis = round(seconds * 1000)
    if millis % 1000:
        return f"{millis}ms"
    whole = millis // 1000
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text + (f"{secs}s" if secs or not text else "")


def sample_labels(
    target: Target, job: ScrapeConfig, rules: RuleSet
) -> Callable[[str, Labels], tuple[str, Labels] | None]:
    """The label function of `target`'s samples (see the module docstring); raises
    `LimitError` for a sample over a label limit."""
    own = target.labels
    honor = job.honor_labels
    label_limit = job.label_limit
    name_limit = job.label_name_length_limit
    value_limit = job.label_value_length_limit

    def label(name: str, labels: Labels) -> tuple[str, Labels] | None:
        merged = dict(labels)
        for label_name, value in own:
            if honor:
                if not merged.get(label_name):
                    merged[label_name] = value
                continue
            exposed = merged.get(label_name)
            if exposed:
                exported = "exported_" + label_name
                while merged.get(exported):
                    exported = "exported_" + exported
                merged[exported] = exposed
            merged[label_name] = value
        pairs = tuple(sorted((n, v) for n, v in merged.items() if v))
        if rules.rules:
            relabeled = rules.apply((("__name__", name), *pairs))
            if isinstance(relabeled, Drop):
                return None
            name = dict(relabeled)["__name__"]
            pairs = tuple(pair for pair in relabeled if pair[0] != "__name__")
        if label_limit and len(pairs) + 1 > label_limit:
            raise LimitError(
                f"label_limit exceeded (metric: {name}, number of labels: {len(pairs) + 1}, "
                f"limit: {label_limit})"
            )
        for label_name, value in pairs:
            if name_limit and len(label_name.encode()) > name_limit:
                raise LimitError(
                    f"label_name_length_limit exceeded (metric: {name}, label name: "
                    f"{label_name}, limit: {name_limit})"
                )
            if value_limit and len(value.encode()) > value_limit:
                raise LimitError(
                    f"label_value_length_limit exceeded (metric: {name}, label name: "
                    f"{label_name}, value: {value!r}, limit: {value_limit})"
                )
        return name, pairs

    return label
