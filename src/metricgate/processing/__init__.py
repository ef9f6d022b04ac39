"""Building blocks shared by several processors, below every processor.

`matching` selects metrics and series for `include`/`exclude` keys (`filter`, `attributes`,
`resource`, `cumulative_to_delta`); `actions` edits attribute sets (`attributes`, `resource`);
`drops` counts dropped points into own telemetry; `streams` is the per-series state of the
stateful processors (`delta_to_cumulative`, `cumulative_to_delta`).

Invariant: nothing here imports a component; a processor that needs another processor's code
moves that code here instead.
"""
