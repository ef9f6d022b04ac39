"""Optional unit normalisation: scaled time and size units to Prometheus base units.

The OpenTelemetry translation keeps the unit a producer chose (`ms` gives `_milliseconds`), which
`promtool check metrics` lints ("use base unit seconds"). With `normalize_units` on, a metric in
`ms`, `us`, `ns`, `min`, `h` or `d` is exposed in seconds and one in `KiBy`, `MBy`, ... in bytes,
its values multiplied by the returned factor. The per-unit part after `/` is normalised the same
way (dividing), so `KiBy/ms` becomes `By/s` with factor 1024 * 1000.

Invariant: `normalize_unit(u)` returns `(u, 1.0)` for every unit it does not know, so turning the
option on never renames a metric whose unit is already a base unit or not a scaled one.
"""

from __future__ import annotations

from functools import lru_cache

_SCALED: dict[str, tuple[str, float]] = {
    "ns": ("s", 1e-9),
    "us": ("s", 1e-6),
    "ms": ("s", 1e-3),
    "min": ("s", 60.0),
    "h": ("s", 3600.0),
    "d": ("s", 86400.0),
    "KiBy": ("By", 1024.0),
    "MiBy": ("By", 1024.0**2),
    "GiBy": ("By", 1024.0**3),
    "TiBy": ("By", 1024.0**4),
    "kBy": ("By", 1e3),
    "KBy": ("By", 1e3),
    "MBy": ("By", 1e6),
    "GBy": ("By", 1e9),
    "TBy": ("By", 1e12),
}


@lru_cache(maxsize=1024)
def normalize_unit(unit: str) -> tuple[str, float]:
    """`(base unit, factor)`: a value in `unit` times `factor` is a value in the base unit."""
    main, slash, per = unit.partition("/")
    main_unit, main_factor = _SCALED.get(main, (main, 1.0))
    if not slash:
        return main_unit, main_factor
    per_unit, per_factor = _SCALED.get(per, (per, 1.0))
    return f"{main_unit}/{per_unit}", main_factor / per_factor
