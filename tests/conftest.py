"""Suite-wide checks: no gateway log of the whole session holds any secret a test used."""

from __future__ import annotations

import pytest

from tests.support.gateway import LOGS, secrets_in


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Each gateway's logs are checked when it stops, against the secrets known then; this sees
    # every secret of the session in every log, whatever order the tests ran in.
    leaks = secrets_in(dict.fromkeys(LOGS))
    if leaks:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"SECRETS FOUND IN GATEWAY LOGS: {leaks}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
