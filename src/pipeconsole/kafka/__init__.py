"""Everything that talks to Kafka. The only package that imports ``confluent_kafka``.

- :mod:`.client`   librdkafka settings from a profile; librdkafka logs routed into Python logging
- :mod:`.producer` an idempotent, acks=all producer whose sends return confirmations
- :mod:`.reader`   an ``assign()`` reader over every partition of some topics (never a group member)
- :mod:`.admin`    topics, watermarks, consumer-group offsets, readiness
- :mod:`.records`  :class:`Record`, the plain value every other module sees instead of a Message
"""

from __future__ import annotations

from pipeconsole.kafka.records import Record

__all__ = ["Record"]
