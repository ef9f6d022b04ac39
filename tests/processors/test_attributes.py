"""The attributes processor and the shared actions: each action, caching, config errors."""

from __future__ import annotations

import hashlib
import math
import struct
from typing import Any

import pytest

from metricgate.config import load_config_text
from metricgate.model import INTERNER, Attributes, Batch, MetricPoints, sorted_attributes
from metricgate.pipeline.service import Service
from metricgate.processing.actions import Actions, AttributeAction, convert_value, hash_value
from metricgate.processors.attributes import AttributesConfig, AttributesProcessor
from tests.support.batches import metric
from tests.support.capture import (
    CaptureExporter,
    InjectReceiver,
    processor_config_problems,
    registry_with_capture,
)
from tests.support.poll import wait_until
from tests.support.sink import Sink

T0 = 1_700_000_000_000_000_000


def apply(actions: list[dict[str, Any]], attributes: dict[str, Any]) -> dict[str, Any]:
    compiled = Actions([AttributeAction.model_validate(a) for a in actions])
    return dict(compiled.apply(sorted_attributes(attributes)))


@pytest.mark.parametrize(
    ("action", "before", "after"),
    [
        ({"key": "env", "action": "insert", "value": "prod"}, {}, {"env": "prod"}),
        ({"key": "env", "action": "insert", "value": "prod"}, {"env": "dev"}, {"env": "dev"}),
        ({"key": "env", "action": "update", "value": "prod"}, {}, {}),
        ({"key": "env", "action": "update", "value": "prod"}, {"env": "dev"}, {"env": "prod"}),
        ({"key": "env", "action": "upsert", "value": 3}, {}, {"env": 3}),
        ({"key": "env", "action": "UPSERT", "value": True}, {"env": "dev"}, {"env": True}),
        ({"key": "env", "action": "upsert", "value": ["a", 1]}, {}, {"env": ("a", 1)}),
        ({"key": "env", "action": "insert", "value": ""}, {}, {"env": ""}),
        (
            {"key": "host", "action": "insert", "from_attribute": "node"},
            {"node": "n1"},
            {"node": "n1", "host": "n1"},
        ),
        (
            {"key": "host", "action": "upsert", "from_attribute": "node"},
            {"host": "h"},
            {"host": "h"},
        ),
        ({"key": "a", "action": "delete"}, {"a": "1", "b": "2"}, {"b": "2"}),
        (
            {"action": "delete", "pattern": "^tmp_"},
            {"tmp_a": "1", "tmp_b": "2", "keep_tmp_": "3"},
            {"keep_tmp_": "3"},
        ),
        (
            {"action": "delete", "pattern": "secret"},  # searched anywhere in the key
            {"db.secret.key": "x", "user": "u"},
            {"user": "u"},
        ),
        (
            {"key": "url", "action": "extract", "pattern": r"^/api/(?P<version>v\d+)/(?P<res>\w+)"},
            {"url": "/api/v2/users/7", "version": "old"},
            {"url": "/api/v2/users/7", "version": "v2", "res": "users"},
        ),
        (
            {"key": "url", "action": "extract", "pattern": r"(?P<id>\d+)(?P<rest>x)?"},
            {"url": "user 42"},
            {"url": "user 42", "id": "42", "rest": ""},
        ),
        ({"key": "url", "action": "extract", "pattern": r"(?P<id>\d+)"}, {"url": 5}, {"url": 5}),
        (  # Go's syntax: \d is ASCII only (Python's re would take the Arabic-Indic digits)
            {"key": "n", "action": "extract", "pattern": r"(?P<id>\d+)"},
            {"n": "\u0661\u0662 7"},
            {"n": "\u0661\u0662 7", "id": "7"},
        ),
        ({"key": "n", "action": "convert", "converted_type": "int"}, {"n": "42"}, {"n": 42}),
        ({"key": "n", "action": "convert", "converted_type": "int"}, {"n": "4x"}, {"n": "4x"}),
        ({"key": "n", "action": "convert", "converted_type": "int"}, {"n": 2.9}, {"n": 2}),
        ({"key": "n", "action": "convert", "converted_type": "double"}, {"n": "1.5"}, {"n": 1.5}),
        ({"key": "n", "action": "convert", "converted_type": "string"}, {"n": True}, {"n": "true"}),
        ({"key": "n", "action": "convert", "converted_type": "string"}, {"n": 2.0}, {"n": "2"}),
    ],
)
def test_each_action(action: dict[str, Any], before: dict[str, Any], after: dict[str, Any]) -> None:
    assert apply([action], before) == after


def test_hash_matches_the_collector() -> None:
    # the Collector's attributes processor printed this for user.email (SHA-256)
    assert (
        hash_value("george@deathstar.email")
        == "62d5e03d8fd5808e77aee5ebbd90cf7627a470ae0be9ffd10e8025a4ad0e1287"
    )
    assert hash_value(24) == hashlib.sha256((24).to_bytes(8, "little")).hexdigest()
    assert hash_value(-1) == hashlib.sha256(b"\xff" * 8).hexdigest()
    assert hash_value(2.4) == hashlib.sha256(struct.pack("<d", 2.4)).hexdigest()
    assert hash_value(True) == hashlib.sha256(b"\x01").hexdigest()
    assert hash_value(False) == hashlib.sha256(b"\x00").hexdigest()
    assert hash_value("") == hash_value(None) == hash_value(("a",)) == ""


def test_hash_by_key_and_pattern_hashes_each_key_once() -> None:
    out = apply(
        [{"key": "email", "action": "hash", "pattern": "^(email|phone)$"}],
        {"email": "a@b", "phone": "1", "name": "n"},
    )
    assert out == {"email": hash_value("a@b"), "phone": hash_value("1"), "name": "n"}


def test_actions_apply_in_order_and_unchanged_input_is_returned_as_is() -> None:
    out = apply(
        [
            {"key": "b", "action": "insert", "from_attribute": "a"},
            {"key": "a", "action": "delete"},
            {"key": "b", "action": "hash"},
        ],
        {"a": "x"},
    )
    assert out == {"b": hash_value("x")}
    compiled = Actions([AttributeAction.model_validate({"key": "zz", "action": "delete"})])
    attributes: Attributes = (("a", "1"),)
    assert compiled.apply(attributes) is attributes


def test_convert_value_edges() -> None:
    assert convert_value(str(2**63), "int") == str(2**63)  # out of int64 range: unchanged
    assert convert_value(False, "double") == 0.0
    assert math.isnan(convert_value(float("nan"), "int"))  # type: ignore[arg-type]
    assert convert_value(7, "double") == 7.0 and isinstance(convert_value(7, "double"), float)


def group(m_name: str, attribute_sets: list[dict[str, Any]]) -> MetricPoints:
    m = metric(m_name)
    out = MetricPoints(m)
    for i, attributes in enumerate(attribute_sets):
        out.append(INTERNER.intern_series(m, sorted_attributes(attributes)), float(i), T0 + i)
    return out


async def test_processor_rewrites_series_and_caches_them() -> None:
    sink = Sink()
    config = AttributesConfig.model_validate(
        {
            "actions": [
                {"key": "pod", "action": "delete"},
                {"key": "env", "action": "insert", "value": "prod"},
            ],
            "exclude": {"metric_names": ["untouched"]},
        }
    )
    proc = AttributesProcessor("attributes", config, sink)
    a = group("requests", [{"pod": "p1", "code": "200"}, {"pod": "p2", "code": "200"}])
    b = group("untouched", [{"pod": "p1"}])
    batch = Batch([a, b])
    await proc.consume(batch)
    await proc.consume(batch)
    first, second = sink.batches
    out = first.metrics[0]
    assert [s.attributes for s in out.series] == [(("code", "200"), ("env", "prod"))] * 2
    assert out.series[0] is out.series[1]  # two inputs collapse onto one interned series
    assert out.series[0].metric is a.metric
    assert out.values == [0.0, 1.0] and out.timestamps == [T0, T0 + 1]
    assert first.metrics[1] is b  # excluded metric: group passed on untouched
    assert all(x is y for x, y in zip(out.series, second.metrics[0].series, strict=True))
    assert len(proc._series) == 3


async def test_processor_forwards_unchanged_batch_as_is() -> None:
    sink = Sink()
    config = AttributesConfig.model_validate({"actions": [{"key": "x", "action": "delete"}]})
    proc = AttributesProcessor("attributes", config, sink)
    batch = Batch([group("requests", [{"code": "200"}])])
    await proc.consume(batch)
    assert sink.batches[0] is batch


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "{actions: [{key: a, action: rename}]}",
            "processors.attributes.actions[0].action: "
            "expected 'insert', 'update', 'upsert', 'delete', 'hash', 'extract' or 'convert', "
            "got 'rename'",
        ),
        (
            "{actions: [{action: insert, value: v}]}",
            "processors.attributes.actions[0].key: required key is missing",
        ),
        (
            "{actions: [{key: a, value: v}]}",
            "processors.attributes.actions[0].action: required key is missing",
        ),
        (
            "{actions: [{action: delete}]}",
            "processors.attributes.actions[0].key: required key is missing",
        ),
        (
            "{actions: [{key: a, action: delete, pattern: '('}]}",
            "processors.attributes.actions[0].pattern: invalid regex '(': missing closing )",
        ),
        (
            "{actions: [{key: a, action: delete, pattern: 'a(?=b)'}]}",
            "processors.attributes.actions[0].pattern: invalid regex 'a(?=b)': lookahead (?=...) "
            "is not supported: RE2 (used by Prometheus) does not support it",
        ),
        (
            "{actions: [{key: a, action: insert}]}",
            "processors.attributes.actions[0]: "
            "expected value or from_attribute for action 'insert'",
        ),
        (
            "{actions: [{key: a, action: insert, value: v, from_attribute: b}]}",
            "processors.attributes.actions[0].from_attribute: expected value or from_attribute, "
            "not both",
        ),
        (
            "{actions: [{key: a, action: delete, value: v}]}",
            "processors.attributes.actions[0].value: not used by action 'delete'",
        ),
        (
            "{actions: [{key: a, action: extract, pattern: '(\\d+)'}]}",
            "processors.attributes.actions[0].pattern: expected only named groups, (?P<name>...)",
        ),
        (
            "{actions: [{key: a, action: extract}]}",
            "processors.attributes.actions[0].pattern: required key is missing",
        ),
        (
            "{actions: [{key: a, action: convert, converted_type: bool}]}",
            "processors.attributes.actions[0].converted_type: "
            "expected 'int', 'double' or 'string', got 'bool'",
        ),
        (
            "{actions: [{key: a, action: delete, from_context: x}]}",
            "processors.attributes.actions[0].from_context: unknown key (expected one of: action, "
            "converted_type, from_attribute, key, pattern, value)",
        ),
        ("{actions: []}", "processors.attributes: expected at least one entry in actions"),
        ("{}", "processors.attributes.actions: required key is missing"),
    ],
)
def test_config_errors_name_the_key(body: str, message: str) -> None:
    assert message in processor_config_problems("attributes", body)


async def test_in_pipeline() -> None:
    config = load_config_text(
        """
receivers: {inject: {}}
processors:
  attributes/scrub: {actions: [{key: user.email, action: hash}, {key: env, action: upsert,
    value: prod}]}
exporters: {capture: {}}
service:
  telemetry: {metrics: {address: ""}}
  pipelines: {metrics: {receivers: [inject], processors: [attributes/scrub],
    exporters: [capture]}}
""",
        registry_with_capture(),
        {},
    )
    service = Service(config)
    await service.start()
    try:
        await InjectReceiver.instances["inject"].push(
            Batch([group("logins", [{"user.email": "george@deathstar.email"}])])
        )
        capture = CaptureExporter.instances["capture"]
        await wait_until(lambda: bool(capture.batches))
        (series,) = capture.batches[0].metrics[0].series
        assert series.attributes == (
            ("env", "prod"),
            ("user.email", "62d5e03d8fd5808e77aee5ebbd90cf7627a470ae0be9ffd10e8025a4ad0e1287"),
        )
    finally:
        await service.shutdown()
