"""Dormitory records: late returns after the building's curfew."""
