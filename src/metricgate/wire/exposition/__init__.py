"""The Prometheus exposition formats: text 0.0.4, OpenMetrics 1.0 and delimited protobuf.

One parser for every part of metricgate that reads pages (the `prometheus` scrape receiver, the
`pushgateway` receiver): `TextParser` for both text formats (strict, with line numbers, and fast on
pages whose series it has seen before), `parse_protobuf` for the protobuf stream, both returning
a `Page`; `format_of` picks the format from a `Content-Type`.

```python
parser = TextParser(openmetrics=False)       # one per source: it remembers that source's series
page = parser.parse('# TYPE up gauge\\nup{job="a"} 1\\n')
family, role = page.resolve(page.entries[0])  # FamilyMeta('up', 'gauge'), ''
```

Invariant: this package is a codec (see `metricgate.wire`): it knows pages, never the model.
"""

from metricgate.wire.exposition.formats import (
    SCRAPE_ACCEPT,
    SCRAPE_ACCEPT_PROTOBUF,
    Format,
    format_of,
)
from metricgate.wire.exposition.page import (
    Exemplar,
    ExpositionError,
    FamilyMeta,
    Labels,
    Page,
    SeriesLine,
    escape,
)
from metricgate.wire.exposition.protobuf import parse_protobuf
from metricgate.wire.exposition.schema import CONTENT_TYPE as PROTOBUF_CONTENT_TYPE
from metricgate.wire.exposition.text import TextParser, parse_float

__all__ = [
    "PROTOBUF_CONTENT_TYPE",
    "SCRAPE_ACCEPT",
    "SCRAPE_ACCEPT_PROTOBUF",
    "Exemplar",
    "ExpositionError",
    "FamilyMeta",
    "Format",
    "Labels",
    "Page",
    "SeriesLine",
    "TextParser",
    "escape",
    "format_of",
    "parse_float",
    "parse_protobuf",
]
