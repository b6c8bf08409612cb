"""Work-order lifecycle and service commitments (SLA)."""
