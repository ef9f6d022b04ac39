"""Which metric names a tenant may write: `allow_metrics` / `deny_metrics`, decided once per name.

A pattern is a Go (RE2) regular expression, matched in linear time (`metricgate.regex`) and
anchored at both ends (Prometheus style: `http_.*` matches
`http_requests_total`, not `my_http_requests`). It is tried against the name as the client sent it
(`http.server.duration`) and against its Prometheus form without suffixes (`http_server_duration`),
so one rule serves OTLP and Prometheus senders alike. A name is allowed when no deny pattern
matches either form and, if allow patterns exist, one of them matches either form.

Invariant: the answer for a name is computed once and remembered in a bounded table; a request
costs one dict lookup per metric (not per point).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from metricgate.model import Batch
from metricgate.regex import GoRegex
from metricgate.translate.names import InvalidMetricNameError, prometheus_metric_name


def _union(patterns: Sequence[str]) -> GoRegex | None:
    if not patterns:
        return None
    return GoRegex("|".join(f"(?:{p})" for p in patterns))


class MetricRights:
    """A tenant's allow and deny lists, with remembered verdicts per metric name."""

    __slots__ = ("_allow", "_deny", "_verdicts", "max_names")

    def __init__(
        self, allow: Sequence[str] = (), deny: Sequence[str] = (), max_names: int = 100_000
    ) -> None:
        self._allow = _union(allow)
        self._deny = _union(deny)
        self._verdicts: dict[str, bool] = {}
        self.max_names = max_names

    @property
    def unrestricted(self) -> bool:
        return self._allow is None and self._deny is None

    def allowed(self, name: str) -> bool:
        verdict = self._verdicts.get(name)
        if verdict is None:
            verdict = self._decide(name)
            if len(self._verdicts) >= self.max_names:
                self._verdicts.clear()
            self._verdicts[name] = verdict
        return verdict

    def _decide(self, name: str) -> bool:
        forms = [name]
        try:
            prometheus = prometheus_metric_name(
                name, "", counter=False, gauge=False, add_suffixes=False
            )
        except InvalidMetricNameError:
            prometheus = name
        if prometheus != name:
            forms.append(prometheus)
        if self._deny is not None and any(self._deny.matches(form) for form in forms):
            return False
        return self._allow is None or any(self._allow.matches(form) for form in forms)

    def filter(self, batch: Batch) -> tuple[Batch, Counter[str]]:
        """The part of `batch` this tenant may write, and points refused per metric name.

        Returns `batch` itself when everything is allowed (the common case allocates nothing).
        """
        if self.unrestricted:
            return batch, Counter()
        refused: Counter[str] = Counter()
        kept = []
        for points in batch.metrics:
            if self.allowed(points.metric.name):
                kept.append(points)
            else:
                refused[points.metric.name] += len(points)
        if not refused:
            return batch, refused
        return Batch(kept), refused


def refusal_message(tenant: str, refused: Counter[str], limit: int = 5) -> str:
    """A message naming the refused metrics, for the client's partial-success answer."""
    names = ", ".join(f"{name!r} ({count} points)" for name, count in refused.most_common(limit))
    more = f" and {len(refused) - limit} more" if len(refused) > limit else ""
    return f"tenant {tenant!r} may not write metrics {names}{more}; the rest was accepted"
