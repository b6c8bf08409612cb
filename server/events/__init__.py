"""Typed domain events and the in-process bus that carries them (see bus.py, types.py)."""
