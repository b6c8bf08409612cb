"""Live event fan-out (SSE) and notification channels."""
