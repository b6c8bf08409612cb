"""Simulated device firmware over the real transports, with injectable faults."""
