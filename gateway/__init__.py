"""Edge gateway: device messages in, decoded readings durably out to the store and uplink."""
