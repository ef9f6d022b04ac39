"""Bounded caches and their release: every per-series cache forgets, none changes an answer."""

from __future__ import annotations

import gc

from metricgate.model import INTERNER
from metricgate.model.caches import BoundedTable, cached_entries, release_caches
from metricgate.receivers.prometheus_remote_write import RemoteWriteDecoder
from metricgate.translate.series import PrometheusTranslator, SeriesView
from metricgate.wire.otlp.decode import ProtobufDecoder
from metricgate.wire.remotewrite.schema import WriteRequest
from tests.support.batches import number_batch


def test_a_full_table_forgets_everything_and_keeps_its_dict() -> None:
    table: BoundedTable[int, str] = BoundedTable(3)
    entries = table.entries
    for i in range(3):
        table.put(i, str(i))
    assert len(table) == 3
    table.put(3, "3")
    assert table.entries is entries and entries == {3: "3"}


def test_release_empties_every_registered_cache_and_answers_stay_the_same() -> None:
    decoder = RemoteWriteDecoder()
    request = WriteRequest()
    series = request.timeseries.add()
    series.labels.add(name="__name__", value="up")
    series.labels.add(name="job", value="x")
    series.samples.add(value=1.0, timestamp=1000)
    body = request.SerializeToString()
    before = decoder.decode_v1(body).batch.metrics[0].series[0]
    translator = PrometheusTranslator()
    view = translator.series(number_batch({"a": 1}).metrics[0].series[0])
    assert len(decoder._v1) == 1 and len(translator) > 0 and len(INTERNER) > 0
    assert cached_entries() >= 3
    assert release_caches() >= 3
    assert len(decoder._v1) == 0 and len(translator) == 0 and len(INTERNER) == 0
    after = decoder.decode_v1(body).batch.metrics[0].series[0]
    assert after == before
    again = translator.series(number_batch({"a": 1}).metrics[0].series[0])
    assert isinstance(view, SeriesView) and isinstance(again, SeriesView)
    assert (again.family.name, again.label_names, again.label_values) == (
        view.family.name,
        view.label_names,
        view.label_values,
    )


def test_registration_keeps_nothing_alive() -> None:
    gc.collect()
    decoder = ProtobufDecoder()
    decoder._entries = 5
    count = cached_entries()
    del decoder
    gc.collect()
    assert cached_entries() == count - 5
