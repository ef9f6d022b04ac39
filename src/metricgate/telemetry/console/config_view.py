"""The effective config: what the running gateway uses, every default filled in, secrets masked.

Laid out like the config file (`receivers`, `processors`, `exporters`, `extensions`, `tenants`,
`service`), each component's validated config dumped with the key names users write (aliases
such as `if`), then passed through `config.redact.redact`: values under secret-looking keys
(`password`, `token`, `key`, `authorization`, ...) become `[REDACTED]`, and secrets inside other
strings (a password in a URL, a bearer header) are masked.

Invariant: nothing leaves this module unredacted; a config part that cannot be dumped shows as
its text, also redacted, never as an error.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from metricgate.config.redact import redact

if TYPE_CHECKING:
    from metricgate.config import Config


def effective_config(config: Config) -> dict[str, Any]:
    """The config as JSON-ready data, redacted (see the module docstring)."""
    tree: dict[str, Any] = {
        section: {cid: _dump(spec.config) for cid, spec in specs.items()}
        for section, specs in (
            ("receivers", config.receivers),
            ("processors", config.processors),
            ("exporters", config.exporters),
        )
    }
    tree["extensions"] = {eid: _dump(spec.config) for eid, spec in config.extensions.items()}
    if config.tenants is not None:
        tree["tenants"] = _dump(config.tenants)
    tree["service"] = _dump(config.service)
    redacted: dict[str, Any] = redact(tree)
    return redacted


def _dump(value: Any) -> Any:
    try:
        if isinstance(value, BaseModel):
            try:
                return value.model_dump(mode="json", by_alias=True)
            except Exception:  # a plugin's model holding a type pydantic cannot serialise
                value = value.model_dump(by_alias=True)
        return json.loads(json.dumps(value, default=str))
    except Exception:
        return str(value)
