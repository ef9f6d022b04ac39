"""`metricgate run --workers N`: the supervisor of a set of worker processes, and what joins the
workers into one gateway (`exchange`: each metric's series routed to the worker that owns them,
questions answered for one view of the whole set)."""

from metricgate.workers.exchange import Router, WorkerExchange
from metricgate.workers.supervisor import Supervisor, worker_count

__all__ = ["Router", "Supervisor", "WorkerExchange", "worker_count"]
