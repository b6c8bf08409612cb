"""Rule evaluation: pure engine, persisted state."""
