"""pipeconsole: a terminal operator console for reactive, Kafka-based streaming pipelines."""

__version__ = "0.1.0"
