"""Logins, tokens and role scope."""
