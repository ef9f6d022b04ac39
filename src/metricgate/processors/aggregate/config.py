"""`processors.aggregate`: stream aggregation rules, in vmagent's `-streamAggr.config` shape.

```yaml
processors:
  aggregate:
    rules:
      - match: 'http_requests_total{env="prod"}'   # selector or list of selectors; omit = all
        interval: 1m                                 # required, >= 1s; spelled into output names
        without: [instance]                          # or `by: [...]`, never both
        outputs: [total, rate_sum, 'quantiles(0.5, 0.99)']
        staleness_interval: 2m                       # default 2 x interval (as vmagent)
        ignore_first_sample_interval: 2m             # default staleness_interval (as vmagent)
        keep_metric_names: false                     # only with exactly one output
        keep_input: false                            # forward matched input too
        flush_on_shutdown: true                      # also emit the partial first/last windows
        ignore_old_samples: false                    # drop samples older than the open window
```

Invariant: a validated `AggregateRuleConfig` is internally consistent (known, unique outputs; at
most one of `by`/`without`; `keep_metric_names` only with one output and without `keep_input`;
`staleness_interval >= interval`), and every problem is reported at the key it concerns.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator

from metricgate.config.types import ComponentConfig, Duration, parse_duration
from metricgate.processors.aggregate.outputs import Output, format_interval, parse_output
from metricgate.relabel.selector import parse_selector

MIN_INTERVAL_S = 1.0


def _check_selector(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a series selector string, got {value!r}")
    parse_selector(value)
    return value


def _check_output(value: Any) -> str:
    parse_output(value)
    return str(value).strip()


def _interval_text(value: Any) -> str:
    seconds = parse_duration(value)
    if seconds < MIN_INTERVAL_S:
        raise ValueError(f"expected an interval of at least 1s, got {value!r}")
    if isinstance(value, str):
        return value.replace(" ", "")
    return format_interval(seconds)


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


SelectorText = Annotated[str, BeforeValidator(_check_selector)]
OutputText = Annotated[str, BeforeValidator(_check_output)]
IntervalText = Annotated[str, BeforeValidator(_interval_text)]


class AggregateRuleConfig(ComponentConfig):
    """One `rules[]` entry (see the module docstring for every key and its default)."""

    name: str = ""
    """Names the rule in metricgate's own metrics; defaults to its index in `rules`."""
    match: Annotated[list[SelectorText], BeforeValidator(_as_list)] = []
    """Series selectors on the Prometheus view of a series; any match counts. Empty: all."""
    interval: IntervalText
    by: list[str] | None = None
    without: list[str] | None = None
    outputs: list[OutputText] = Field(min_length=1)
    staleness_interval: Duration | None = None
    ignore_first_sample_interval: Duration | None = None
    """For this long after start, a new series' first sample is only a baseline for counters."""
    keep_metric_names: bool = False
    keep_input: bool = False
    flush_on_shutdown: bool = True
    ignore_old_samples: bool = False

    @field_validator("by")
    @classmethod
    def _empty_by_is_absent(cls, value: list[str] | None) -> list[str] | None:
        # vmagent adds `_by_...` to names only for a non-empty list; an empty one means "absent".
        return value or None

    @field_validator("without")
    @classmethod
    def _not_both(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if value and info.data.get("by"):
            raise ValueError("cannot be combined with `by`; use one of them")
        return value or None

    @field_validator("outputs")
    @classmethod
    def _unique_outputs(cls, value: list[str]) -> list[str]:
        seen: set[str] = set()
        for text in value:
            name = parse_output(text).name
            if name in seen:
                raise ValueError(f"output {name!r} is listed twice")
            seen.add(name)
        return value

    @field_validator("staleness_interval")
    @classmethod
    def _staleness(cls, value: float | None, info: ValidationInfo) -> float | None:
        interval = info.data.get("interval")
        if value is not None and interval is not None and value < parse_duration(interval):
            raise ValueError(f"must be at least the interval ({interval}), got {value:g}s")
        return value

    @field_validator("keep_metric_names")
    @classmethod
    def _keep_names(cls, value: bool, info: ValidationInfo) -> bool:
        outputs = info.data.get("outputs")
        if value and outputs is not None and len(outputs) != 1:
            raise ValueError(f"needs exactly one output, got {len(outputs)}")
        return value

    @field_validator("keep_input")
    @classmethod
    def _keep_input(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("keep_metric_names"):
            raise ValueError("cannot be combined with keep_metric_names (names would clash)")
        return value

    @property
    def interval_s(self) -> float:
        return parse_duration(self.interval)

    @property
    def staleness_s(self) -> float:
        """`staleness_interval`, defaulting to twice the interval as vmagent does."""
        return self.staleness_interval or 2.0 * self.interval_s

    @property
    def ignore_first_sample_s(self) -> float:
        """`ignore_first_sample_interval`, defaulting to the staleness interval as vmagent does."""
        if self.ignore_first_sample_interval is None:
            return self.staleness_s
        return self.ignore_first_sample_interval

    def parsed_outputs(self) -> tuple[Output, ...]:
        return tuple(parse_output(text) for text in self.outputs)


class AggregateConfig(ComponentConfig):
    """`processors.aggregate`: a list of independent stream aggregation rules."""

    rules: list[AggregateRuleConfig] = Field(min_length=1)
