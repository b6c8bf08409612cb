"""The `facility` command: one entry point for demo, gateway, server, sim and tools."""
