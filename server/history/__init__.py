"""History reads from the time-series store."""
