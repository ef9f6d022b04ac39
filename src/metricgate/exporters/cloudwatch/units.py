"""OTLP (UCUM) units -> CloudWatch `StandardUnit`.

CloudWatch units are labels: it converts nothing and does not say whether `Kilobytes` means 1000
or 1024 bytes. Only decimal UCUM prefixes (`KBy`, `MBy`, `kbit` ...) map to the prefixed units;
binary ones (`KiBy`, `MiBy`) and units CloudWatch has no name for (`ns`, `min`, `Cel`) become
`None` rather than a label that would mislead. Annotations (`{request}`) are counts.
"""

from __future__ import annotations

from typing import Final

UNITS: Final = {
    "s": "Seconds",
    "ms": "Milliseconds",
    "us": "Microseconds",
    "By": "Bytes",
    "KBy": "Kilobytes",
    "kBy": "Kilobytes",
    "MBy": "Megabytes",
    "GBy": "Gigabytes",
    "TBy": "Terabytes",
    "bit": "Bits",
    "kbit": "Kilobits",
    "Kbit": "Kilobits",
    "Mbit": "Megabits",
    "Gbit": "Gigabits",
    "Tbit": "Terabits",
    "%": "Percent",
    "1": "None",
    "": "None",
    "By/s": "Bytes/Second",
    "KBy/s": "Kilobytes/Second",
    "kBy/s": "Kilobytes/Second",
    "MBy/s": "Megabytes/Second",
    "GBy/s": "Gigabytes/Second",
    "TBy/s": "Terabytes/Second",
    "bit/s": "Bits/Second",
    "kbit/s": "Kilobits/Second",
    "Kbit/s": "Kilobits/Second",
    "Mbit/s": "Megabits/Second",
    "Gbit/s": "Gigabits/Second",
    "Tbit/s": "Terabits/Second",
    "1/s": "Count/Second",
}


def cloudwatch_unit(unit: str) -> str:
    """The CloudWatch unit for an OTLP unit; `None` (the string) when there is no match."""
    found = UNITS.get(unit)
    if found is not None:
        return found
    if unit.startswith("{") and unit.endswith("}"):
        return "Count"
    if unit.startswith("{") and unit.endswith("}/s"):
        return "Count/Second"
    return "None"
