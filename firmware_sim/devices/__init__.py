"""Device models: each steps its physics and says what it would publish."""
