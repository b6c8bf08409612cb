"""Types and wire schema shared by gateway, server and simulated firmware; no I/O here."""
