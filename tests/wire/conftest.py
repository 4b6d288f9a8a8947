"""Fixtures for the wire tests: a self-recursive message built at runtime, the naughty strings,
and a request that is valid in every field."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

from pipeconsole.wire.gen.device_request_pb2 import DeviceRequest

DATA = Path(__file__).resolve().parent.parent / "data"


def build_node_type() -> type[Message]:
    """``message Node { Node child = 1; string s = 2; }``: the nesting-bomb carrier."""
    fdp = descriptor_pb2.FileDescriptorProto(
        name="pipeconsole_wire_test_node.proto", package="pcwiretest", syntax="proto3"
    )
    node = fdp.message_type.add(name="Node")
    fdp_field = descriptor_pb2.FieldDescriptorProto
    node.field.add(
        name="child",
        number=1,
        type=fdp_field.TYPE_MESSAGE,
        label=fdp_field.LABEL_OPTIONAL,
        type_name=".pcwiretest.Node",
    )
    node.field.add(name="s", number=2, type=fdp_field.TYPE_STRING, label=fdp_field.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("pcwiretest.Node"))


@pytest.fixture(scope="session")
def node_type() -> type[Message]:
    return build_node_type()


def nested_node(node_type: type[Message], depth: int) -> Message:
    """A Node with ``depth`` levels of children below the root."""
    root = node_type()
    cur = root
    for _ in range(depth):
        cur = cur.child  # type: ignore[attr-defined]
        cur.s = "x"
    return root


def load_blns_bytes() -> list[bytes]:
    """Every entry as bytes. Some are not UTF-8 on their own (the file splits long strings
    into fixed-size pieces), which makes them good wire-level test input too."""
    raw = json.loads((DATA / "blns.base64.json").read_text())
    return [base64.b64decode(item) for item in raw]


def load_blns() -> list[str]:
    """Every entry as text (invalid UTF-8 replaced: protobuf strings cannot hold it)."""
    return [item.decode("utf-8", "replace") for item in load_blns_bytes()]


@pytest.fixture(scope="session")
def blns() -> list[str]:
    return load_blns()


def valid_request() -> DeviceRequest:
    req = DeviceRequest(
        method="POST",
        uri="/jobs/encode?profile=hd",
        headers={"Accept": "application/json"},
        entity_content_type="application/json",
        entity=b'{"job": 1}',
        request_id=str(uuid.UUID(int=0x6F1F6D4E1B1C4C8E9A571F2B3C4D5E6F)),
        device_id="transcode-03",
        nonce="n-1",
        issued_by="operator@example",
    )
    req.qos.priority = 1
    return req
