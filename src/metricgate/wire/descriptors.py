"""Protobuf messages declared in code, each file in a private descriptor pool.

metricgate parses and writes OTLP, remote-write 1.0/2.0 and the exposition protobuf format
without generated code: each schema is a dict of message name -> fields, given to
`message_classes`. A field is `(name, number, type)` or `(name, number, type, oneof)`; the type
is a scalar (`double`, `fixed64`, `string`, ...) or the name of a message of the same file,
prefixed with `*` for `repeated` or `?` for proto3 `optional` (a field with presence). Fields
naming the same `oneof` share it. Declaring a field with a cheaper type than the official proto
(`bytes` for a submessage, `int32` for an enum) is how codecs leave parts undecoded.

Being in private pools, these classes never clash with generated code a user may load.

Invariant: a schema built here is only ever a description; codecs that use it live beside it.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
_SCALARS: Final = {
    "double": _F.TYPE_DOUBLE,
    "fixed64": _F.TYPE_FIXED64,
    "sfixed64": _F.TYPE_SFIXED64,
    "uint64": _F.TYPE_UINT64,
    "int64": _F.TYPE_INT64,
    "sint64": _F.TYPE_SINT64,
    "int32": _F.TYPE_INT32,
    "sint32": _F.TYPE_SINT32,
    "uint32": _F.TYPE_UINT32,
    "bool": _F.TYPE_BOOL,
    "string": _F.TYPE_STRING,
    "bytes": _F.TYPE_BYTES,
}

Field = tuple[str, int, str] | tuple[str, int, str, str]
"""`(name, number, type)` or `(name, number, type, oneof)`; see the module docstring."""


def file_descriptor(
    name: str,
    package: str,
    messages: dict[str, list[Field]],
    syntax: Literal["proto2", "proto3"] = "proto3",
) -> descriptor_pb2.FileDescriptorProto:
    """The file descriptor declaring `messages` in `package`."""
    file = descriptor_pb2.FileDescriptorProto(name=name, package=package, syntax=syntax)
    for message_name, fields in messages.items():
        message = file.message_type.add(name=message_name)
        oneofs: dict[str, int] = {}
        optional: list[Any] = []
        for spec in fields:
            field_name, number, type_spec = spec[0], spec[1], spec[2]
            field = message.field.add(name=field_name, number=number, json_name=field_name)
            marker, type_name = (
                (type_spec[0], type_spec[1:]) if type_spec[0] in "*?" else ("", type_spec)
            )
            field.label = _F.LABEL_REPEATED if marker == "*" else _F.LABEL_OPTIONAL
            if type_name in _SCALARS:
                field.type = _SCALARS[type_name]
            else:
                field.type = _F.TYPE_MESSAGE
                field.type_name = f".{package}.{type_name}"
            if len(spec) == 4:
                oneof = spec[3]
                if oneof not in oneofs:
                    oneofs[oneof] = len(message.oneof_decl)
                    message.oneof_decl.add(name=oneof)
                field.oneof_index = oneofs[oneof]
            elif marker == "?":
                field.proto3_optional = True
                optional.append(field)
        # Synthetic oneofs of proto3 optionals must follow every real oneof.
        for field in optional:
            field.oneof_index = len(message.oneof_decl)
            message.oneof_decl.add(name=f"_{field.name}")
    return file


def message_classes(
    name: str,
    package: str,
    messages: dict[str, list[Field]],
    syntax: Literal["proto2", "proto3"] = "proto3",
) -> dict[str, Any]:
    """Message name -> class for every message of `messages`, built in a pool of their own."""
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_descriptor(name, package, messages, syntax))
    return {
        message: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.{message}"))
        for message in messages
    }
