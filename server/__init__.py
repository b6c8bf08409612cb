"""Server: uplink in, live state, rules -> alerts -> work orders, REST API and web UI."""
