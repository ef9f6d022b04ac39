"""Fixtures of the receiver tests: `gateway`, the pushgateway receiver in process (see
`tests/support/pushgateway.py`); a module with a `gateway` fixture of its own uses that one."""

from tests.support.pushgateway import gateway

__all__ = ["gateway"]
