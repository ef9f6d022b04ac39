"""`metricgate demo`: a simulated AI-agent fleet recording the whole catalog into metricgate.

A `Fleet` of agents (several agent types, providers and models) does work in ticks: LLM and tool
calls that succeed, fail or time out, tokens and their cost (priced with the `genai_cost`
processor's built-in table), tasks and queues, memory and context retrieval, plus the HTTP, DB,
session and feature traffic of the product around them. Load follows a slow wave, and now and then
one provider has an incident (more errors and timeouts, slower calls), so dashboards and alerts
have something to show. `run_demo` records through `AgentMetrics` into a running metricgate.

Invariant: everything random comes from one `random.Random(seed)` and the tick number, never from
the clock, so the same seed and agent count record the same values tick after tick.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from metricgate.catalog.recorder import AgentMetrics, ExportProtocol
from metricgate.processors.genai_cost.prices import PriceTable, builtin_prices

__all__ = ["AGENT_TYPES", "MODELS", "DemoAgent", "Fleet", "run_demo"]

AGENT_TYPES: Final = ("planner", "researcher", "coder", "reviewer", "support")
MODELS: Final = (
    ("openai", "gpt-4o-mini"),
    ("openai", "gpt-4.1"),
    ("anthropic", "claude-sonnet-4"),
    ("anthropic", "claude-3-5-haiku"),
    ("google", "gemini-2.5-flash"),
)
_OPERATIONS: Final = (("llm_call", 5), ("tool_call", 3), ("retrieval", 2), ("plan", 1))
_TASK_TYPES: Final = {
    "planner": ("plan", "decompose"),
    "researcher": ("search", "summarize"),
    "coder": ("code", "test"),
    "reviewer": ("review",),
    "support": ("answer", "escalate"),
}
_PRIORITIES: Final = (("high", 1), ("normal", 4), ("low", 2))
_QUEUES: Final = ("tasks", "llm_requests", "tool_calls")
_RETRIEVAL_TYPES: Final = ("vector", "keyword", "graph")
_ROUTES: Final = (
    ("POST", "/v1/chat", 6),
    ("GET", "/v1/agents", 2),
    ("GET", "/v1/agents/{id}", 3),
    ("POST", "/v1/tasks", 3),
    ("GET", "/v1/tasks/{id}", 4),
)
_QUERIES: Final = (
    ("select", "tasks", 6),
    ("select", "sessions", 4),
    ("insert", "tasks", 2),
    ("update", "tasks", 2),
    ("insert", "events", 3),
)
_FEATURES: Final = (("chat", 6), ("code_review", 2), ("search", 4), ("summarize", 3))
_USER_TYPES: Final = (("free", 6), ("pro", 3), ("enterprise", 1))
_FIRST_INCIDENT: Final = 30
"""Tick of the first incident: at the default 1s interval a newcomer sees one within a minute."""
_INCIDENT_EVERY: Final = 90
_INCIDENT_TICKS: Final = 20


@dataclass(frozen=True)
class DemoAgent:
    """One simulated agent: who it is and which model it calls."""

    agent_id: str
    agent_type: str
    provider: str
    model: str


def _agent(index: int) -> DemoAgent:
    # Spread models so that every agent type talks to several providers.
    agent_type = AGENT_TYPES[index % len(AGENT_TYPES)]
    provider, model = MODELS[(index * 3 + index // len(AGENT_TYPES)) % len(MODELS)]
    return DemoAgent(f"{agent_type}-{index + 1:02d}", agent_type, provider, model)


def _weighted(rng: random.Random, choices: tuple[tuple[str, int], ...]) -> str:
    names = [name for name, _ in choices]
    return rng.choices(names, weights=[weight for _, weight in choices])[0]


class Fleet:
    """Simulated agents and their surroundings; `tick()` records one interval of activity.

    Everything goes to `metrics`, except that an agent whose model is a key of `model_metrics`
    records its operations, executions and tokens there (one program per model, whose resource
    can name the model for the `genai_cost` processor). `record_cost=False` leaves `agent.cost`
    to that processor; `usd` still adds up what the calls cost.
    """

    def __init__(
        self,
        metrics: AgentMetrics,
        agents: int = 12,
        seed: int = 1,
        prices: PriceTable | None = None,
        *,
        record_cost: bool = True,
        model_metrics: Mapping[str, AgentMetrics] | None = None,
    ) -> None:
        if agents < 1:
            raise ValueError(f"agents must be at least 1, got {agents}")
        self.metrics = metrics
        self.record_cost = record_cost
        self.model_metrics = dict(model_metrics or {})
        self.rng = random.Random(seed)
        self.prices = prices or PriceTable(builtin_prices(), {})
        self.agents = [_agent(i) for i in range(agents)]
        self.tick_number = 0
        self.queues = {(q, p): 5.0 for q in _QUEUES for p, _ in _PRIORITIES}
        self.sessions = 40.0 + 5 * agents
        self.usd = 0.0
        """Dollars the simulated calls cost so far (the demo prints it)."""

    def recorder(self, agent: DemoAgent) -> AgentMetrics:
        """Where `agent`'s own metrics go (see class docstring)."""
        return self.model_metrics.get(agent.model, self.metrics)

    def incident_provider(self) -> str | None:
        """The provider having an incident at this tick, if any."""
        since = self.tick_number - _FIRST_INCIDENT
        if since < 0 or since % _INCIDENT_EVERY >= _INCIDENT_TICKS:
            return None
        providers = sorted({agent.provider for agent in self.agents})
        return providers[since // _INCIDENT_EVERY % len(providers)]

    def load(self) -> float:
        """Relative load: a slow wave between 0.5 and 1.5 (one period per 10 minutes at 1s)."""
        return 1.0 + 0.5 * math.sin(2 * math.pi * self.tick_number / 600)

    def tick(self) -> None:
        """Record one interval: agents work, then queues, system and business metrics move."""
        self.tick_number += 1
        incident = self.incident_provider()
        load = self.load()
        for agent in self.agents:
            self._agent_work(agent, load, agent.provider == incident)
        self._agent_gauges()
        self._tasks(load)
        self._system(load, incident is not None)
        self._business(load)

    # -- agents ---------------------------------------------------------------------------------

    def _agent_work(self, agent: DemoAgent, load: float, degraded: bool) -> None:
        rng, m = self.rng, self.recorder(agent)
        ids = {"agent_id": agent.agent_id, "agent_type": agent.agent_type}
        for _ in range(max(1, round(rng.uniform(1, 4) * load))):
            operation = _weighted(rng, _OPERATIONS)
            failure = rng.random()
            error_rate, timeout_rate = (0.25, 0.15) if degraded else (0.05, 0.02)
            status = (
                "error"
                if failure < error_rate
                else "timeout"
                if failure < error_rate + timeout_rate
                else "success"
            )
            m.record_agent_operation(
                operation=operation, provider=agent.provider, status=status, **ids
            )
            if operation == "llm_call" and status != "timeout":
                self._llm_call(agent, failed=status == "error")
            elif operation == "retrieval":
                m.record_context_retrieval(
                    rng.lognormvariate(math.log(0.02), 0.8),
                    namespace=f"{agent.agent_type}-memory",
                    retrieval_type=rng.choice(_RETRIEVAL_TYPES),
                )
        seconds = rng.lognormvariate(math.log(3.0), 0.9) * (4.0 if degraded else 1.0)
        m.record_agent_execution(
            min(seconds, 300.0),
            task_type=rng.choice(_TASK_TYPES[agent.agent_type]),
            provider=agent.provider,
            **ids,
        )

    def _llm_call(self, agent: DemoAgent, *, failed: bool) -> None:
        rng = self.rng
        prompt = int(rng.lognormvariate(math.log(1500), 0.6))
        completion = 0 if failed else int(rng.lognormvariate(math.log(350), 0.7))
        self.recorder(agent).record_tokens(
            agent_id=agent.agent_id,
            agent_type=agent.agent_type,
            provider=agent.provider,
            input_tokens=prompt,
            output_tokens=completion,
        )
        price = self.prices.lookup(agent.provider, agent.model)
        if price is None:
            return
        usd = prompt * price.per_token("input") + completion * price.per_token("output")
        self.usd += usd
        if self.record_cost:
            self.recorder(agent).record_cost(
                usd, agent_id=agent.agent_id, agent_type=agent.agent_type, provider=agent.provider
            )

    def _agent_gauges(self) -> None:
        active = Counter((agent.agent_type, agent.provider) for agent in self.agents)
        for (agent_type, provider), count in sorted(active.items()):
            busy = sum(self.rng.random() < 0.9 for _ in range(count))
            self.metrics.set_active_agents(busy, agent_type=agent_type, provider=provider)
        for agent_type in sorted({agent.agent_type for agent in self.agents}):
            base = 64 * 2**20 * (1 + self.tick_number % 300 / 300)
            self.metrics.set_memory_usage(
                int(base * self.rng.uniform(0.9, 1.1)),
                namespace=f"{agent_type}-memory",
                agent_type=agent_type,
            )

    # -- tasks ----------------------------------------------------------------------------------

    def _tasks(self, load: float) -> None:
        rng, m = self.rng, self.metrics
        for _ in range(max(1, round(len(self.agents) * load / 2))):
            agent = rng.choice(self.agents)
            roll = rng.random()
            status = "completed" if roll < 0.9 else "failed" if roll < 0.97 else "cancelled"
            m.record_task(
                task_type=rng.choice(_TASK_TYPES[agent.agent_type]),
                status=status,
                priority=_weighted(rng, _PRIORITIES),
            )
            m.record_dependency_resolution(rng.lognormvariate(math.log(0.08), 0.7))
        for (queue, priority), depth in self.queues.items():
            depth = max(0.0, depth + rng.gauss(0.5 * (load - 1.0), 1.5))
            self.queues[queue, priority] = depth
            m.set_queue_depth(round(depth), queue_type=queue, priority=priority)

    # -- system and business --------------------------------------------------------------------

    def _system(self, load: float, incident: bool) -> None:
        rng, m = self.rng, self.metrics
        for _ in range(round(20 * load)):
            method, route = self._route()
            roll = rng.random()
            server_error = 0.08 if incident else 0.02
            code = 500 if roll < server_error else 429 if roll < server_error + 0.01 else 200
            if code == 200 and method == "POST":
                code = 201
            seconds = rng.lognormvariate(math.log(0.08 if route != "/v1/chat" else 0.9), 0.6)
            m.record_http_request(method, route, code, seconds)
        for _ in range(round(30 * load)):
            operation, table = _weighted_pair(rng, _QUERIES)
            m.record_db_query(
                rng.lognormvariate(math.log(0.004), 0.9), operation=operation, table=table
            )
        m.set_db_connections(round(20 * load + rng.uniform(0, 8)), database="app", pool="primary")
        m.set_db_connections(round(8 * load + rng.uniform(0, 4)), database="app", pool="replica")

    def _route(self) -> tuple[str, str]:
        method, route, _ = self.rng.choices(_ROUTES, weights=[w for *_, w in _ROUTES])[0]
        return method, route

    def _business(self, load: float) -> None:
        rng, m = self.rng, self.metrics
        self.sessions = max(0.0, self.sessions + rng.gauss(2 * (load - 1.0), 2.0))
        m.set_active_sessions(round(self.sessions))
        for _ in range(round(8 * load)):
            m.record_feature_usage(
                feature=_weighted(rng, _FEATURES), user_type=_weighted(rng, _USER_TYPES)
            )


def _weighted_pair(
    rng: random.Random, choices: tuple[tuple[str, str, int], ...]
) -> tuple[str, str]:
    first, second, _ = rng.choices(choices, weights=[w for *_, w in choices])[0]
    return first, second


def run_demo(
    *,
    endpoint: str,
    protocol: ExportProtocol = "grpc",
    duration: float = 0.0,
    interval: float = 1.0,
    agents: int = 12,
    seed: int = 1,
    cost_by_gateway: bool = False,
    stop: threading.Event | None = None,
    report: Callable[[str], None] = print,
) -> Fleet:
    """Record a fleet into metricgate at `endpoint` every `interval` s for `duration` s (0: until
    `stop` is set or Ctrl-C); flushes and shuts the exporters down before returning.

    `cost_by_gateway`: record no `agent.cost`; each model's agents report as their own program
    (instance `demo-<seed>-<model>`) with resource attribute `gen_ai.request.model`, so a
    `genai_cost` processor in metricgate can price their tokens."""
    if interval <= 0:
        raise ValueError(f"interval must be > 0, got {interval}")
    if protocol == "http" and "://" not in endpoint:
        endpoint = f"http://{endpoint}"

    def program(instance: str, attributes: Mapping[str, str] | None = None) -> AgentMetrics:
        return AgentMetrics(
            endpoint=endpoint,
            protocol=protocol,
            service_name="metricgate-demo",
            service_instance_id=instance,
            resource_attributes=attributes,
            export_interval=interval,
        )

    metrics = program(f"demo-{seed}")
    model_metrics = {}
    if cost_by_gateway:
        models = sorted({agent.model for agent in map(_agent, range(agents))})
        model_metrics = {
            model: program(f"demo-{seed}-{model}", {"gen_ai.request.model": model})
            for model in models
        }
    fleet = Fleet(
        metrics,
        agents=agents,
        seed=seed,
        record_cost=not cost_by_gateway,
        model_metrics=model_metrics,
    )
    stop = stop or threading.Event()
    started = time.monotonic()
    report(f"demo: {agents} agents -> {endpoint} ({protocol}), a tick every {interval:g}s")
    try:
        while not stop.is_set():
            fleet.tick()
            if fleet.tick_number % max(1, round(30 / interval)) == 0:
                incident = fleet.incident_provider()
                report(
                    f"demo: tick {fleet.tick_number}, ${fleet.usd:.4f} spent"
                    + (f", {incident} incident" if incident else "")
                )
            if duration and time.monotonic() - started >= duration:
                break
            stop.wait(interval)
    except KeyboardInterrupt:
        pass
    finally:
        for recorder in (metrics, *model_metrics.values()):
            recorder.shutdown()
    return fleet
