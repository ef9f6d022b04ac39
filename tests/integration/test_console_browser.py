"""The operator console in a real browser: Debian's headless Chromium on a metricgate subprocess.

The gateway runs otlp -> relabel + cardinality_limit -> prometheus + debug and gets traffic from
the OpenTelemetry SDK; the page must draw the configured components with live rates, answer in
the relabel playground, hide the config's secret, show the reload endpoint's answer, and stay
readable at a phone's width. Screenshots go to the test's tmp dir (their paths are printed).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.browser import chromium, require_chromium
from tests.support.gateway import Gateway, run_gateway

pytestmark = pytest.mark.integration

SECRET = "browser-test-secret-4f1c"

TEMPLATE = """
extensions:
  bearertokenauth/ci: {{token: "%s"}}
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: "127.0.0.1:{grpc}"}}
      http: {{endpoint: "127.0.0.1:{http}"}}
processors:
  relabel:
    relabel_configs:
      - {{source_labels: [route], regex: '/api/v1/(.*)', target_label: endpoint}}
  cardinality_limit: {{max_series_per_metric: 3}}
exporters:
  prometheus: {{endpoint: "127.0.0.1:{prometheus}"}}
  debug: {{}}
service:
  extensions: [bearertokenauth/ci]
  pipelines:
    metrics:
      receivers: [otlp]
      processors: [relabel, cardinality_limit]
      exporters: [prometheus, debug]
  telemetry:
    metrics: {{address: "127.0.0.1:{telemetry}"}}
    logs: {{level: info, format: json}}
""".replace("%s", SECRET)  # the template's own braces are str.format's

EDGES = [
    ("receiver:otlp", "processor:relabel"),
    ("processor:relabel", "processor:cardinality_limit"),
    ("processor:cardinality_limit", "exporters"),
]


@contextmanager
def sdk_traffic(gateway: Gateway) -> Iterator[None]:
    """An SDK exporting a counter over OTLP/HTTP every 200 ms until the block ends."""
    exporter = OTLPMetricExporter(endpoint=gateway.url("http", "/v1/metrics"))
    provider = MeterProvider(
        resource=Resource.create({"service.name": "shop", "service.instance.id": "pod-1"}),
        metric_readers=[PeriodicExportingMetricReader(exporter, export_interval_millis=200)],
    )
    requests = provider.get_meter("shop").create_counter("http.requests")
    for index in range(6):  # more series than the limiter admits, so it refuses some
        requests.add(1, {"route": f"/api/v1/item{index}"})
    try:
        yield
    finally:
        provider.shutdown()


def wait(driver: WebDriver, timeout: float = 30.0) -> WebDriverWait[WebDriver]:
    """Poll every 0.2 s; the page redraws its sections, so an element may go stale meanwhile."""
    return WebDriverWait(
        driver, timeout, poll_frequency=0.2, ignored_exceptions=[StaleElementReferenceException]
    )


def edge_rates(driver: WebDriver) -> dict[tuple[str, str], float]:
    """The rate on each edge of the `metrics` pipeline, read in one go (no stale elements)."""
    found = driver.execute_script(
        "return Array.from(document.querySelectorAll('.edge[data-pipeline=\"metrics\"]'))"
        ".map((e) => [e.dataset.from, e.dataset.to, Number(e.dataset.rate)])"
    )
    return {(source, target): rate for source, target, rate in found}


def test_console_in_chromium(tmp_path: Path) -> None:
    require_chromium()
    with (
        run_gateway(tmp_path, TEMPLATE) as gateway,
        sdk_traffic(gateway),
        chromium(tmp_path / "profile") as driver,
    ):
        driver.get(gateway.url("telemetry", "/"))
        assert driver.title == "metricgate console"

        # The graph: the configured components, and points flowing on every edge.
        for node in ("receiver:otlp", "processor:relabel", "processor:cardinality_limit",
                     "exporter:prometheus", "exporter:debug"):  # fmt: skip
            wait(driver).until(
                lambda d, n=node: d.find_elements(By.CSS_SELECTOR, f'[data-node="{n}"]')
            )
        wait(driver).until(
            lambda d: all(edge_rates(d).get(edge, 0) > 0 for edge in EDGES), "rates stay at 0"
        )
        assert set(edge_rates(driver)) == set(EDGES)
        wait(driver).until(
            lambda d: (
                d.find_element(By.CSS_SELECTOR, '[data-exporter="prometheus"] .health').text
                == "healthy"
            )
        )
        # The cardinality explorer names the limited metric and its refused series.
        wait(driver).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, '[data-limiter="cardinality_limit"]')
        )
        driver.find_element(By.ID, "cardinality-refresh").click()
        wait(driver).until(
            lambda d: (
                "3 refused"
                in d.find_element(By.CSS_SELECTOR, '[data-limiter="cardinality_limit"] h3').text
            )
        )

        # The relabel playground: the page's example rules on its example series.
        driver.find_element(By.ID, "relabel-run").click()
        wait(driver).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".trace")) == 2)
        kept, dropped = driver.find_elements(By.CSS_SELECTOR, ".trace")
        assert 'endpoint="cart"' in kept.find_element(By.CSS_SELECTOR, ".verdict").text
        assert "dropped" in dropped.find_element(By.CSS_SELECTOR, ".verdict").text
        # ... and the configured processor's rules, picked from the list.
        Select(driver.find_element(By.ID, "relabel-source")).select_by_value("relabel")
        rules = driver.find_element(By.ID, "relabel-rules")
        assert "target_label: endpoint" in (rules.get_attribute("value") or "")
        series = driver.find_element(By.ID, "relabel-series")
        series.clear()
        series.send_keys('http_requests_total{route="/api/v1/pay"}')
        driver.find_element(By.ID, "relabel-run").click()
        wait(driver).until(
            lambda d: (
                'endpoint="pay"'
                in " ".join(v.text for v in d.find_elements(By.CSS_SELECTOR, ".trace .verdict"))
            )
        )

        # The effective config, secret redacted.
        config = driver.find_element(By.ID, "config-text")
        wait(driver).until(lambda d: "bearertokenauth/ci" in config.text)
        assert "token: '[REDACTED]'" in config.text and SECRET not in config.text
        assert SECRET not in driver.page_source

        # The reload button reloads and shows the server's answer, problems included.
        driver.find_element(By.ID, "reload").click()
        result = driver.find_element(By.ID, "reload-result")
        wait(driver).until(lambda d: result.text.startswith("reloaded: 0 rebuilt"))
        assert "ok" in (result.get_attribute("class") or "")
        valid = gateway.config_path.read_text()
        gateway.config_path.write_text(valid + "\nbogus: 1\n")
        driver.find_element(By.ID, "reload").click()
        wait(driver).until(lambda d: "bogus: unknown key" in result.text)
        assert result.text.startswith("reload failed (400): invalid configuration")
        assert "error" in (result.get_attribute("class") or "")
        gateway.config_path.write_text(valid)

        errors = [
            entry["message"]
            for entry in driver.get_log("browser")
            if entry["level"] == "SEVERE" and "/-/reload" not in entry["message"]
        ]
        assert errors == []
        driver.execute_script("window.scrollTo(0, 0)")
        wide = tmp_path / "console.png"
        driver.save_screenshot(str(wide))
        print(f"console screenshot: {wide}")

        # A phone: nothing wider than the screen, pipelines drawn top to bottom.
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True},
        )
        driver.refresh()
        wait(driver).until(lambda d: all(edge_rates(d).get(edge, 0) > 0 for edge in EDGES))
        widths = driver.execute_script(
            "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert widths[0] <= widths[1] == 390
        otlp = driver.find_element(By.CSS_SELECTOR, '[data-node="receiver:otlp"]').rect
        relabel = driver.find_element(By.CSS_SELECTOR, '[data-node="processor:relabel"]').rect
        assert relabel["y"] > otlp["y"] + otlp["height"]
        phone = tmp_path / "console-phone.png"
        driver.save_screenshot(str(phone))
        print(f"console phone screenshot: {phone}")
