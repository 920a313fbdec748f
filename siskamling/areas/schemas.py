from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class AreaOut(BaseModel):
    code: str
    name: str
    level: str
    path: str
    parent_code: str | None
    attributes: dict[str, Any]
    centroid: list[float] | None
    bbox: list[float] | None
    counts: dict[str, int]


class LevelOut(BaseModel):
    level: str
    code: str
    name: str
    path: str


class LocationOut(BaseModel):
    status: str
    lat: float
    lon: float
    area: LevelOut | None = None
    levels: list[LevelOut] = []
    distance_m: float | None = None
    note: str | None = None
