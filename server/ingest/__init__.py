"""Uplink consumer and live device state."""
