"""Oracle tests: the same rules through real vmagent / Prometheus and through our engine.

vmagent 1.79: one victoria-metrics and one vmagent with one `-remoteWrite.url` per case (each with
its own `-remoteWrite.urlRelabelConfig` and `?extra_label=oracle_case=<id>`, all into the same
victoria-metrics), so every case sees every input series in one push. Prometheus 2.42 (for what
vmagent lacks or does differently: hashmod's MD5, keepequal/dropequal, target-label validation):
one scrape job per case on a local page, with `metric_relabel_configs` plus a last rule that adds
`oracle_case`. Both then report the stored series, compared with `RuleSet.apply` on the same input.
`promtool check config` is the oracle for which regexes Go accepts.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from metricgate.processors.relabel import (
    Drop,
    GoRegex,
    RegexError,
    RelabelRuleConfig,
    RuleSet,
    parse_series,
)
from tests.support.binaries import require_binary
from tests.support.poll import block_until
from tests.support.ports import free_port

pytestmark = pytest.mark.integration

INPUT = [
    'http_requests_total{method="GET",code="200",path="/api/v1/users",instance_id="web-1"}',
    'http_requests_total{method="POST",code="500",path="/api/v1/orders",instance_id="web-2"}',
    'http_requests_total{method="get",code="404",path="/",instance_id="web-10"}',
    'process_cpu_seconds_total{service="api",env="prod"}',
    'process_cpu_seconds_total{service="worker",env="staging",region="eu-west-1"}',
    'node_memory_bytes{host="node-1.example.com",kind="free"}',
    'node_memory_bytes{host="node-2.example.com",kind="used",team="Platform"}',
    'agent_llm_tokens_total{model="gpt-4o",provider="openai",direction="input"}',
    'agent_llm_tokens_total{model="claude-3-5-sonnet",provider="anthropic",direction="output"}',
    'agent_tool_calls_total{tool="search",status="ok",agent="Planner"}',
    'agent_tool_calls_total{tool="browse",status="error",agent="planner"}',
    'queue_depth{queue="emails",shard="03"}',
    'queue_depth{queue="Émails-ünïcode",shard="3"}',
    'check_status{a="x",b="x",c="y"}',
    'check_status{a="same",b="same",c="same"}',
    'temperature_celsius{sensor="t1",location="rack;1 row 2"}',
    'query_latency{query="select \\"x\\" from t",note="back\\\\slash"}',
    "build_info",
]

BOTH, VM, PROM = "both", "vmagent", "prometheus"
CASES: dict[str, dict[str, list[dict[str, Any]]]] = yaml.safe_load(
    r"""
both:
  replace_capture:
    - {source_labels: [code], regex: '(\d)\d\d', target_label: class, replacement: '${1}xx'}
  replace_copy:
    - {source_labels: [method], target_label: verb}
  replace_join:
    - {source_labels: [method, code, missing], separator: ':', target_label: mc}
  replace_no_match:
    - {source_labels: [path], regex: 'x(.*)', target_label: path, replacement: y}
  replace_empty_deletes:
    - {source_labels: [env], regex: prod, target_label: env, replacement: ''}
  replace_static:
    - {target_label: cluster, replacement: eu-1}
  replace_target_template:
    - {source_labels: [kind], regex: '(.+)', target_label: 'mem_${1}', replacement: 'yes'}
  replace_named_groups:
    - {source_labels: [instance_id], regex: '(?P<role>[a-z]+)-(?P<n>\d+)', target_label: slot,
       replacement: '$n.$role'}
  replace_dollar_names:
    - {source_labels: [shard], regex: '(\d+)', target_label: s1, replacement: '$1x'}
    - {source_labels: [shard], regex: '(\d+)', target_label: s2, replacement: '${1}x'}
    - {source_labels: [code], target_label: price, replacement: 'cost$$1'}
  replace_separator_in_value:
    - {source_labels: [location, sensor], regex: '(.*);(.*);(.*)', target_label: parts,
       replacement: '$3|$2|$1'}
  replace_escaped_values:
    - {source_labels: [query], regex: '.*"(x)".*', target_label: col}
    - {source_labels: [note], regex: '(.*)\\(.*)', target_label: note, replacement: '$2-$1'}
  rename_metric:
    - {source_labels: [__name__], regex: '(.*)_total', target_label: __name__,
       replacement: '${1}_count'}
  keep_by_name:
    - {action: keep, source_labels: [__name__], regex: 'http_.*|check_status'}
  drop_by_label:
    - {action: drop, source_labels: [status], regex: error}
  keep_missing_is_empty:
    - {action: keep, source_labels: [region], regex: ''}
  keep_is_anchored:
    - {action: keep, source_labels: [path], regex: '/api|/'}
  keep_joined_sources:
    - {action: keep, source_labels: [method, code], regex: 'GET;2..|get;4..'}
  labeldrop:
    - {action: labeldrop, regex: 'instance_id|path|env'}
  labelkeep:
    - {action: labelkeep, regex: '__name__|method|code|queue|job|instance'}
  labelmap:
    - {action: labelmap, regex: '(.*)_id', replacement: '${1}'}
  labelmap_prefix:
    - {action: labelmap, regex: '(s.*)', replacement: 'x_$1'}
  lower_upper:
    - {action: lowercase, source_labels: [agent], target_label: agent}
    - {action: uppercase, source_labels: [method, queue], target_label: mq}
  case_insensitive:
    - {action: drop, source_labels: [agent], regex: '(?i)planner'}
  ascii_classes:
    - {action: drop, source_labels: [shard], regex: '\d+'}
    - {source_labels: [queue], regex: '(\w+)(.*)', target_label: head}
  alternation_and_classes:
    - {source_labels: [host], regex: '([^.]+)\.(?:example|test)\.com', target_label: node}
    - {source_labels: [model], regex: '(gpt|claude)-([0-9a-z-]+?)(-sonnet)?',
       target_label: family, replacement: '$1/$3'}
  chained:
    - {source_labels: [__name__, method], regex: 'http_requests_total;(?i)(get|post)',
       target_label: m}
    - {action: keep, source_labels: [m], regex: '.+'}
    - {action: labeldrop, regex: method}
  regex_unicode_fold:
    - {source_labels: [queue], regex: '(?i)(émails)-(.*)', target_label: g, replacement: '$2'}
    - {source_labels: [agent], regex: '(?i:P)(lanner)', target_label: h}
  regex_boundaries_and_posix:
    - {source_labels: [path], regex: '.*\b(v\d)\b.*', target_label: ver}
    - {source_labels: [host], regex: '[[:lower:]]+-([[:digit:]])\..*', target_label: n}
  regex_ungreedy_and_counts:
    - {source_labels: [instance_id], regex: '(?U)(.+)(-\d{1,2})', target_label: base,
       replacement: '$1|$2'}
    - {source_labels: [model], regex: '([a-z]{3,6})-(.*)', target_label: m3}
  regex_unicode_classes:
    - {source_labels: [queue], regex: '(\pL+)-(\p{Ll}+)', target_label: words,
       replacement: '$2:$1'}
  regex_empty_alternative:
    - {source_labels: [region], regex: '(|eu-(.*))', target_label: r, replacement: 'x$2'}

# vmagent only. No `if:` cases: vmagent 1.79 applies `if:` on -remoteWrite.urlRelabelConfig
# erratically (rules hit series the selector does not match; `keep` ignores a mismatch), so
# `if:` is checked against vmagent's documented semantics in test_relabel_rules instead.
vmagent:
  scratch_labels:  # Prometheus keeps __tmp labels on metric relabeling; vmagent and we do not
    - {source_labels: [path], regex: '/api/(v\d+)/.*', target_label: __tmp_ver}
    - {source_labels: [__tmp_ver], target_label: api_version}
  regex_list:
    - {action: keep, source_labels: [__name__], regex: [check_status, queue_depth]}
  keep_metrics:
    - {action: keep_metrics, regex: 'agent_.*'}
  drop_metrics:
    - {action: drop_metrics, regex: [queue_depth, build_info]}
  replace_all:
    - {action: replace_all, source_labels: [path], target_label: path, regex: /, replacement: _}
  labelmap_all:
    - {action: labelmap_all, regex: '_id$', replacement: _ident}
  keep_if_equal:
    - {action: keep_if_equal, source_labels: [a, b]}
  drop_if_equal:
    - {action: drop_if_equal, source_labels: [a, b, c]}

# Prometheus only: vmagent 1.79 lacks keepequal/dropequal, hashes with xxhash instead of MD5 and
# sets labels whose expanded names are invalid.
prometheus:
  hashmod:
    - {action: hashmod, source_labels: [instance_id], modulus: 4, target_label: bucket}
  hashmod_joined:
    - {action: hashmod, source_labels: [__name__, model], separator: /, modulus: 1000003,
       target_label: bucket}
  keepequal:
    - {action: keepequal, source_labels: [a], target_label: c}
  dropequal:
    - {action: dropequal, source_labels: [a], target_label: c}
  invalid_expanded_target:
    - {source_labels: [code], regex: '(.*)', target_label: '$1', replacement: x}
"""
)
RULES = {case: rules for group in CASES.values() for case, rules in group.items()}

LabelSet = frozenset[tuple[str, str]]


def ours(rules: list[dict[str, Any]], extra: dict[str, str]) -> set[LabelSet]:
    rule_set = RuleSet([RelabelRuleConfig.model_validate(rule) for rule in rules])
    found = set()
    for text in INPUT:
        result = rule_set.apply(tuple(sorted({**parse_series(text), **extra}.items())))
        if not isinstance(result, Drop):
            found.add(frozenset(result))
    return found


def _cases(oracle: str) -> list[str]:
    return [*CASES[BOTH], *CASES[oracle]]


def _start(stack: ExitStack, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)

    def stop() -> None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    stack.callback(stop)
    return process


def _wait(check: Any, what: str, logs: list[Path], timeout: float = 30.0) -> Any:
    def attempt() -> Any:
        try:
            return check()
        except requests.RequestException:
            return None

    try:
        return block_until(attempt, timeout, what, 0.1)
    except AssertionError as error:
        tails = "\n".join(log.read_text(errors="replace")[-2000:] for log in logs)
        raise AssertionError(f"{error}\n{tails}") from None


def _samples(url: str) -> dict[str, float]:
    """Prometheus text metrics page as {series text: value}, summed by metric name too."""
    found: dict[str, float] = {}
    for line in requests.get(url, timeout=5).text.splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            found[series] = float(value)
            name = series.split("{")[0]
            found[name] = found.get(name, 0.0) + float(value)
    return found


@pytest.fixture(scope="module")
def vmagent_results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, set[LabelSet]]]:
    vm_bin, vmagent_bin = require_binary("victoria-metrics"), require_binary("vmagent")
    tmp = tmp_path_factory.mktemp("vmagent-oracle")
    vm_port, agent_port = free_port(), free_port()
    vm, agent = f"http://127.0.0.1:{vm_port}", f"http://127.0.0.1:{agent_port}"
    cases = _cases(VM)
    remote: list[str] = []
    for case in cases:
        (tmp / f"{case}.yml").write_text(yaml.safe_dump(RULES[case]))
        remote += [
            f"-remoteWrite.url={vm}/api/v1/write?extra_label=oracle_case={case}",
            f"-remoteWrite.urlRelabelConfig={tmp / f'{case}.yml'}",
        ]
    logs = [tmp / "vm.log", tmp / "vmagent.log"]
    with ExitStack() as stack:
        _start(
            stack,
            [vm_bin, f"-storageDataPath={tmp / 'vm'}", f"-httpListenAddr=127.0.0.1:{vm_port}",
             "-search.disableCache", "-loggerLevel=ERROR"],
            logs[0],
        )  # fmt: skip
        _start(
            stack,
            [vmagent_bin, f"-httpListenAddr=127.0.0.1:{agent_port}", "-loggerLevel=ERROR",
             f"-remoteWrite.tmpDataPath={tmp / 'queue'}", "-remoteWrite.flushInterval=100ms",
             *remote],
            logs[1],
        )  # fmt: skip
        for url in (vm, agent):
            _wait(lambda url=url: requests.get(f"{url}/health", timeout=1).ok, url, logs)
        now_ms = int(time.time() * 1000)
        body = "".join(f"{series} 1 {now_ms}\n" for series in INPUT)
        requests.post(f"{agent}/api/v1/import/prometheus", data=body.encode(), timeout=10)

        def delivered() -> bool:
            sent, stored = _samples(f"{agent}/metrics"), _samples(f"{vm}/metrics")
            pushed = sent.get("vmagent_remotewrite_rows_pushed_after_relabel_total", -1)
            return (
                sent.get('vmagent_rows_inserted_total{type="prometheus"}') == len(INPUT)
                and sent.get("vmagent_remotewrite_pending_data_bytes", -1) == 0
                and stored.get('vm_rows_inserted_total{type="promremotewrite"}') == pushed
            )

        _wait(delivered, "vmagent to deliver everything", logs)
        requests.get(f"{vm}/internal/force_flush", timeout=10)
        export = requests.post(
            f"{vm}/api/v1/export", data={"match[]": '{oracle_case!=""}'}, timeout=10
        )
        found: dict[str, set[LabelSet]] = {case: set() for case in cases}
        for line in export.text.splitlines():
            labels = json.loads(line)["metric"]
            found[labels.pop("oracle_case")].add(frozenset(labels.items()))
        yield found


@pytest.mark.parametrize("case", _cases(VM))
def test_same_series_as_vmagent(case: str, vmagent_results: dict[str, set[LabelSet]]) -> None:
    assert ours(RULES[case], {}) == vmagent_results[case]


class _Page(BaseHTTPRequestHandler):
    body = "".join(f"{series} 1\n" for series in INPUT).encode()

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def prometheus_results(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, dict[str, set[LabelSet]]]]:
    binary = require_binary("prometheus")
    tmp = tmp_path_factory.mktemp("prometheus-oracle")
    page = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(target=page.serve_forever, daemon=True).start()
    target = f"127.0.0.1:{page.server_address[1]}"
    cases = _cases(PROM)
    jobs = []
    for case in cases:
        rules = [*RULES[case], {"target_label": "oracle_case", "replacement": case}]
        jobs.append(
            {
                "job_name": case,
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "static_configs": [{"targets": [target]}],
                "metric_relabel_configs": rules,
            }
        )
    (tmp / "prometheus.yml").write_text(yaml.safe_dump({"scrape_configs": jobs}))
    port = free_port()
    url, logs = f"http://127.0.0.1:{port}", [tmp / "prometheus.log"]
    with ExitStack() as stack:
        stack.callback(page.shutdown)
        _start(
            stack,
            [binary, f"--config.file={tmp / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
            logs[0],
        )  # fmt: skip

        def all_scraped() -> bool:
            targets = requests.get(f"{url}/api/v1/targets", timeout=2).json()["data"]
            active = targets["activeTargets"]
            return len(active) == len(cases) and all(t["health"] == "up" for t in active)

        _wait(all_scraped, "Prometheus to scrape every case", logs)
        response = requests.get(
            f"{url}/api/v1/series",
            params={"match[]": '{oracle_case!=""}', "start": str(time.time() - 300)},
            timeout=10,
        )
        found: dict[str, set[LabelSet]] = {case: set() for case in cases}
        for labels in response.json()["data"]:
            found[labels.pop("oracle_case")].add(frozenset(labels.items()))
        yield target, found


@pytest.mark.parametrize("case", _cases(PROM))
def test_same_series_as_prometheus(
    case: str, prometheus_results: tuple[str, dict[str, set[LabelSet]]]
) -> None:
    target, found = prometheus_results
    assert ours(RULES[case], {"job": case, "instance": target}) == found[case]


REGEXES = [
    r"a|b", r"(a)(?:b)(?P<name>c)", r"[[:alpha:]][^[:digit:]]", r"\pL\p{Lu}\PN", r"(?i)abc",
    r"(?s:.)(?m)^$(?-m)", r"(?U)a+?", r"a{2}", r"a{2,}", r"a{,2}", r"a{1000}", r"(a{10}){100}",
    r"\Q*+?\E", r"\x41\x{263a}\101", r"[\d\s\w]", r"[^\D]", r"\A\z\b\B", r"[a-]", r"[]a]",
    r"\_\.\-\/", r"a{1001}", r"(a{10}){101}", r"(a)\1", r"\8", r"(?=a)", r"(?!a)", r"(?<=a)",
    r"(?<!a)", r"(?>a)", r"(?P=n)", r"a**", r"a*+", r"a++", r"a{2}*", r"*a", r"(|*)", r"(a",
    r"a)", r"[a", r"[z-a]", r"[[:nope:]]", r"\Z", r"\e", r"\C", r"[\b]", r"\k<n>", r"(?#x)",
    r"(?i-)", r"(?x)a", r"(?P<a-b>x)", r"(?P<>x)", r"\pX", "\\", r"x{2,1}", r"\x{110000}",
    r"\xZZ", r"\0", r"\07", r"\1", r"\10", r"[\1]", r"(?P<1x>a)", r"(?:)", r"()", r"|",
]  # fmt: skip


def _promtool_accepts(promtool: str, tmp: Path, index: int, pattern: str) -> bool:
    rule = {"action": "keep", "source_labels": ["a"], "regex": pattern}
    job = {"job_name": "x", "static_configs": [{"targets": ["127.0.0.1:1"]}]}
    config = tmp / f"regex-{index}.yml"
    config.write_text(
        yaml.safe_dump({"scrape_configs": [{**job, "metric_relabel_configs": [rule]}]})
    )
    check = subprocess.run([promtool, "check", "config", str(config)], capture_output=True)
    return check.returncode == 0


def test_the_same_regexes_are_accepted_as_by_prometheus(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    with ThreadPoolExecutor(8) as pool:
        verdicts = list(
            pool.map(lambda item: _promtool_accepts(promtool, tmp_path, *item), enumerate(REGEXES))
        )
    differ = []
    for pattern, accepted in zip(REGEXES, verdicts, strict=True):
        try:
            GoRegex(pattern)
            ours_accepts = True
        except RegexError:
            ours_accepts = False
        if ours_accepts != accepted:
            differ.append((pattern, "prometheus accepts" if accepted else "prometheus refuses"))
    assert not differ
