"""Siskamling: a city's communal security platform (area-scoped CCTV, citizen reports, accountability)."""

__version__ = "0.1.0"
