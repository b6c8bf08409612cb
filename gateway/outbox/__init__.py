"""Durable on-disk outbox between decoding and the sinks."""
