"""A small authoritative DNS server over UDP on loopback, for dns_sd tests (dnspython messages)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import cast

import dns.asyncresolver
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


@dataclass
class Zone:
    """Records by (absolute name, type), names answered with SERVFAIL, and queries seen."""

    records: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    servfail: set[str] = field(default_factory=set)
    queries: list[tuple[str, str]] = field(default_factory=list)

    def answer(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        question = query.question[0]
        name, kind = question.name.to_text(), dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, kind))
        if name in self.servfail:
            response.set_rcode(dns.rcode.SERVFAIL)
            return response
        cname = self.records.get((name, "CNAME"))
        if cname and kind != "CNAME":
            response.answer.append(_rrset(name, "CNAME", cname))
            name = cname[0]
        if (name, kind) in self.records:
            response.answer.append(_rrset(name, kind, self.records[(name, kind)]))
        elif not any(known == name for known, _ in self.records):
            response.set_rcode(dns.rcode.NXDOMAIN)
        return response


def _rrset(name: str, kind: str, values: list[str]) -> dns.rrset.RRset:
    return dns.rrset.from_text_list(
        dns.name.from_text(name), 30, dns.rdataclass.IN, dns.rdatatype.from_text(kind), values
    )


class _Server(asyncio.DatagramProtocol):
    def __init__(self, zone: Zone) -> None:
        self.zone = zone
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(self.zone.answer(dns.message.from_wire(data)).to_wire(), addr)


async def start(zone: Zone) -> tuple[asyncio.DatagramTransport, dns.asyncresolver.Resolver]:
    """Serve `zone` on a free UDP port; return the transport and a resolver pointed at it."""
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: _Server(zone), local_addr=("127.0.0.1", 0)
    )
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = transport.get_extra_info("sockname")[1]
    resolver.lifetime = 1.0
    return transport, resolver
