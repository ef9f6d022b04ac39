"""The operator console: a page at `/` of the telemetry server, and the JSON API it reads.

It shows the pipeline graph as configured with live points/s per edge (`graph`, from the own
telemetry counters sampled by `rates`), each exporter's queue fill and health, the last error of
each component (`last_errors`, a logging handler: components change nothing), the panels that
components register (`panels`: the cardinality explorer, the relabel playground), the effective
config with secrets redacted (`config_view`) and a reload button. `routes` serves it all; the
page itself is plain HTML, CSS and JavaScript in `static/`, package data, with no build step.

Invariant: the console sits in the telemetry layer and imports no component; components reach
it only through `Host.add_console_panel`, the service through `Console.show_gateway`.
"""

from metricgate.telemetry.console.access import AdminGate, open_gate
from metricgate.telemetry.console.panels import ConsolePanel, PanelAct, PanelRead
from metricgate.telemetry.console.routes import CONSOLE_KEY, Console, reload_unavailable

__all__ = [
    "CONSOLE_KEY",
    "AdminGate",
    "Console",
    "ConsolePanel",
    "PanelAct",
    "PanelRead",
    "open_gate",
    "reload_unavailable",
]
