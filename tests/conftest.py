"""Suite-wide checks and fixtures.

Checks: no gateway log of the whole session holds any secret a test used.
Fixtures: moto's server standing in for AWS (CloudWatch, Logs: `moto_url`) and the dummy
credentials that talk to it (`dummy_credentials`; modules that talk to AWS ask for them with
`pytestmark = pytest.mark.usefixtures("dummy_credentials")`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto.server import ThreadedMotoServer

from tests.support.aws import DUMMY_CREDENTIALS
from tests.support.gateway import LOGS, secrets_in


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """A `ThreadedMotoServer` on a free port, for the whole test module."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def dummy_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials from the environment, never from the machine's AWS profile."""
    for key, value in DUMMY_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Each gateway's logs are checked when it stops, against the secrets known then; this sees
    # every secret of the session in every log, whatever order the tests ran in.
    leaks = secrets_in(dict.fromkeys(LOGS))
    if leaks:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"SECRETS FOUND IN GATEWAY LOGS: {leaks}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
