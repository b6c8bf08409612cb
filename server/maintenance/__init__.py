"""Declared maintenance windows: while one covers a device, its rules raise nothing."""
