"""The per-shard pieces of remote-write request bodies.

`Builder` collects one shard's encoded `timeseries` entries (see
`metricgate.wire.remotewrite.encode`) into `Fragment`s of at most `max_samples` samples, the
pieces a shard joins into request bodies.

Invariant: a fragment holds whole entries only, so any run of fragments joins into a valid body.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Fragment:
    """Encoded `timeseries` entries for one shard: a piece of a request body (a lane's `Piece`).

    `points` counts the data points whose entries it holds (a histogram point is several
    samples; `target_info` and expiry StaleNaNs belong to no point); `tenant` is whose series
    they are ("" without `tenant_header`)."""

    data: bytes
    samples: int
    points: int
    tenant: str = ""


class Builder:
    """One shard's output of an encode call, cut into fragments of bounded size.

    The encoder adds to `samples` for every entry and to `extra` for every entry that is not a
    point of its own, so a gauge's hot path counts one number only."""

    __slots__ = ("extra", "fragments", "max_bytes", "max_samples", "out", "samples", "tenant")

    def __init__(self, max_samples: int, max_bytes: int, tenant: str = "") -> None:
        self.out = bytearray()
        self.samples = 0
        self.extra = 0
        self.fragments: list[Fragment] = []
        self.max_samples = max_samples
        self.max_bytes = max_bytes
        self.tenant = tenant

    def room(self, need: int) -> None:
        """Cut the current fragment if `need` more samples would overfill it."""
        if self.samples and (
            self.samples + need > self.max_samples
            or (self.max_bytes and len(self.out) >= self.max_bytes)
        ):
            self.cut()

    def cut(self) -> None:
        self.fragments.append(
            Fragment(bytes(self.out), self.samples, self.samples - self.extra, self.tenant)
        )
        self.out = bytearray()
        self.samples = self.extra = 0

    def finish(self) -> list[Fragment]:
        if self.samples:
            self.cut()
        return self.fragments
