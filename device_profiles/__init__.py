"""Device profiles, shipped as package data: one YAML file per device model, and the
default rules of each device class in ``classes/``. Loaded by :mod:`core.profiles`."""

from __future__ import annotations

from pathlib import Path

# The folder itself, wherever the package is installed (a wheel in site-packages, or the
# source tree when installed editable), so no default points into a checkout.
DIRECTORY = Path(__file__).resolve().parent
