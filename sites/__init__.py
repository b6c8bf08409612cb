"""Site files shipped as package data; ``demo/site.yaml`` is the demo campus that
``facility demo`` runs and the settings default to. Loaded by :mod:`core.site`."""

from __future__ import annotations

from pathlib import Path

# The folder itself, wherever the package is installed (see device_profiles/__init__.py).
DIRECTORY = Path(__file__).resolve().parent
DEMO_SITE_FILE = DIRECTORY / "demo" / "site.yaml"
