"""Generated protobuf code: do not edit; run scripts/gen-proto."""
