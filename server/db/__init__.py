"""Relational store: engine, models, migrations."""
