"""Alert lifecycle."""
