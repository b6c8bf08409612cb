"""Where accepted readings go: time-series stores and the uplink to the server."""
