"""Series budgets per tenant: each tenant is limited as if it had a limiter of its own.

A `Budget` is one `SeriesTracker` (admitted series, counts, caps) and one `Folder` (overflow
state). Data without a tenant (resource attribute `tenant_attribute` absent, or not a valid tenant
id) shares the limiter's own budget, as before tenants existed; each tenant gets a budget of its
own the first time its data arrives, so one tenant's explosion never refuses, evicts or folds
another tenant's series: `max_series`, `max_series_per_metric` and `per_label` are all counted
within the tenant.

A tenant's `max_series` is `tenants.<id>.max_series`, else (for a tenant not listed there)
`tenants."*".max_series`, else the processor's `max_series`. Tenants listed under `tenants:`
always get a budget; other tenants get one while fewer than `max_tenants` such budgets exist,
after that they share the budget `_other` (logged once), which bounds memory when tenants are
not authenticated. Budgets of unlisted tenants that tracked nothing for a whole window are
forgotten by the sweep, making room again.

A hot reload that changes only the caps hands the budgets to the rebuilt limiter (`counts_like`,
`retune`): tracked series and verdicts stay, new series meet the new caps.

Invariant: a resource maps to one budget, decided once and remembered (bounded); the processor
only ever asks a tenant's budget about that tenant's series.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from metricgate.config.tenants import DEFAULT_TENANT, TenantsConfig
from metricgate.model import Resource, Series
from metricgate.processors.cardinality_limit.config import CardinalityLimitConfig
from metricgate.processors.cardinality_limit.fold import Folder
from metricgate.processors.cardinality_limit.leases import Account, Ask, Lease
from metricgate.processors.cardinality_limit.tracker import SeriesTracker
from metricgate.tenants.split import TenantSplitter

log = logging.getLogger(__name__)

OTHER_TENANTS = "_other"
"""The budget tenants share once `max_tenants` unlisted tenants have one."""
_MAX_RESOURCES = 100_000


class Budget:
    """One tenant's (or the untenanted data's) tracker, folder and series cap."""

    __slots__ = ("folder", "lease", "max_series", "tenant", "tracker")

    def __init__(
        self,
        tenant: str,
        config: CardinalityLimitConfig,
        max_series: int,
        now: float,
        always_refuse: Callable[[Series], bool] | None,
    ) -> None:
        self.tenant = tenant
        """"" for the data without a tenant."""
        self.max_series = max_series
        self.tracker = SeriesTracker(
            max_series=max_series,
            max_series_per_metric=config.max_series_per_metric,
            per_label=tuple((limit.label, limit.max_series) for limit in config.label_limits),
            window=config.window,
            fixed=config.window_type == "fixed",
            max_refused=config.max_refused_series,
            max_label_values=config.max_label_values,
            now=now,
            always_refuse=always_refuse,
        )
        self.folder = Folder(config.max_refused_series)
        self.lease: Lease | None = None
        """In a `--workers N` set with a `max_series`: this worker's share of it (`leases`)."""

    def lease_from(self, ask: Ask | None, count: int) -> None:
        """Count `max_series` against a share of the set's (`count` workers; `ask` reaches worker
        0 and the others, see `leases`), or, with None, here alone."""
        if ask is None or not self.max_series:
            self.lease = None
            self.tracker.allowance = None
        elif self.lease is None:
            self.lease = Lease(self.tenant, self.tracker, self.max_series, count, ask)
        else:
            self.lease.retune(self.max_series)

    def retune(self, config: CardinalityLimitConfig, max_series: int) -> None:
        """Count against `config`'s caps from now on (hot reload); tracked series stay."""
        self.max_series = max_series
        tracker = self.tracker
        tracker.max_series = max_series
        tracker.max_series_per_metric = config.max_series_per_metric
        tracker.per_label = tuple((limit.label, limit.max_series) for limit in config.label_limits)
        tracker.max_refused = config.max_refused_series
        tracker.max_label_values = config.max_label_values

    @property
    def idle(self) -> bool:
        tracker = self.tracker
        return not (tracker.admitted_total or tracker.refused_total or tracker.draining)


class Budgets:
    """The budgets of one limiter, and which one a resource's data counts against."""

    def __init__(
        self,
        config: CardinalityLimitConfig,
        now: float,
        always_refuse: Callable[[Series], bool] | None = None,
    ) -> None:
        self.config = config
        self._always_refuse = always_refuse
        self.shared = Budget("", config, config.max_series, now, always_refuse)
        """The budget of data without a tenant (and of every tenant without `tenant_attribute`)."""
        self.tenants: dict[str, Budget] = {}
        self._splitter = (
            TenantSplitter(config.tenant_attribute) if config.tenant_attribute else None
        )
        self._listed: TenantsConfig | None = None
        self._by_resource: dict[Resource, Budget] = {}
        self._warned = False
        self.ask: Ask | None = None
        """How this worker reaches the others for shares of `max_series` (`share_with`)."""
        self.workers = 1
        self.account: Account | None = None
        """Worker 0's record of the shares (`leases`); kept across a hot reload with the rest."""

    def share_with(self, ask: Ask | None, workers: int = 1) -> None:
        """In a set of `workers`, count every `max_series` as a share of the set's (`ask`
        reaches the other workers); None: here alone."""
        self.ask, self.workers = ask, workers
        for budget in self.all():
            budget.lease_from(ask, workers)

    def lease(self, key: str) -> Lease | None:
        """The lease of the budget of tenant `key` ("": data without one), if it exists."""
        budget = self.shared if not key else self.tenants.get(key)
        return budget.lease if budget is not None else None

    def counts_like(self, other: Budgets) -> bool:
        """Whether `other`'s state means the same under this config (hot reload): the same
        window, window type, limit action, tenant attribute and per-label labels; the caps
        may differ (`retune`)."""
        mine, theirs = self.config, other.config
        return (
            mine.window == theirs.window
            and mine.window_type == theirs.window_type
            and mine.on_limit == theirs.on_limit
            and mine.tenant_attribute == theirs.tenant_attribute
            and [limit.label for limit in mine.label_limits]
            == [limit.label for limit in theirs.label_limits]
        )

    def retune(self, config: CardinalityLimitConfig) -> None:
        """Take `config`'s caps, keeping every budget and what it tracks (hot reload)."""
        self.config = config
        self.shared.retune(config, config.max_series)
        for tenant, budget in self.tenants.items():
            budget.retune(config, self.max_series(tenant))
        self.share_with(self.ask, self.workers)

    def configure(self, tenants: TenantsConfig | None) -> None:
        """Take the `tenants:` section's budgets (at start); existing budgets keep theirs."""
        self._listed = tenants

    def all(self) -> list[Budget]:
        return [self.shared, *self.tenants.values()]

    def of(self, resource: Resource, now: float) -> Budget:
        """The budget `resource`'s series count against."""
        known = self._by_resource
        try:
            return known[resource]
        except KeyError:
            pass
        splitter = self._splitter
        tenant = splitter.tenant(resource) if splitter is not None else ""
        budget = self._budget(tenant, now) if tenant else self.shared
        if len(known) >= _MAX_RESOURCES:
            known.clear()
        known[resource] = budget
        return budget

    def _budget(self, tenant: str, now: float) -> Budget:
        budget = self.tenants.get(tenant)
        if budget is not None:
            return budget
        listed = self._listed.root if self._listed is not None else {}
        if tenant not in listed:
            unlisted = sum(1 for name in self.tenants if name not in listed)
            if unlisted >= self.config.max_tenants:
                if not self._warned:
                    self._warned = True
                    log.warning(
                        "cardinality_limit: max_tenants tenants have budgets of their own; "
                        "further tenants share one",
                        extra={"budget": OTHER_TENANTS, "max_tenants": self.config.max_tenants},
                    )
                tenant = OTHER_TENANTS
                budget = self.tenants.get(tenant)
                if budget is not None:
                    return budget
        budget = self.tenants[tenant] = Budget(
            tenant, self.config, self.max_series(tenant), now, self._always_refuse
        )
        budget.lease_from(self.ask, self.workers)
        return budget

    def max_series(self, tenant: str) -> int:
        """The `max_series` of `tenant` (see module docstring)."""
        listed = self._listed.root if self._listed is not None else {}
        entry = listed.get(tenant) if tenant != DEFAULT_TENANT else None
        if entry is None:
            entry = listed.get(DEFAULT_TENANT)
        if entry is not None and entry.max_series is not None:
            return entry.max_series
        return self.config.max_series

    def forget_idle(self) -> None:
        """Drop the budgets of unlisted tenants that track nothing (room under max_tenants)."""
        listed = self._listed.root if self._listed is not None else {}
        idle = [t for t, b in self.tenants.items() if t not in listed and b.idle]
        if idle:
            for tenant in idle:
                del self.tenants[tenant]
            self._by_resource.clear()
