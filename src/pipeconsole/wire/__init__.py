"""The wire protocol: generated protobuf (gen/), the safe codec (limits) and validation."""
