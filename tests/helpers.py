"""Small helpers shared by tests."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parents[1]


def shared_data() -> Path:
    """Jakarta reference data (../shared/data from the project root), or skip the test."""
    candidates = [os.environ.get("SISKAMLING_SHARED_DATA"), ROOT.parent / "shared" / "data", "/work/shared/data"]
    for c in candidates:
        if c and (Path(c) / "boundaries" / "dki_kelurahan_kemendagri.geojson").exists():
            return Path(c)
    pytest.skip("Jakarta reference data not found (set SISKAMLING_SHARED_DATA to the shared/data folder)")


def html(response) -> BeautifulSoup:
    assert "text/html" in response.headers["content-type"], response.headers["content-type"]
    return BeautifulSoup(response.text, "html.parser")


def write_geojson(path: Path, features: list[dict]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def square(lon: float, lat: float, size: float = 0.01) -> dict:
    return {"type": "Polygon", "coordinates": [[[lon, lat], [lon + size, lat], [lon + size, lat + size],
                                                [lon, lat + size], [lon, lat]]]}


def kel_feature(code: str, name: str, geometry: dict | None) -> dict:
    kec, kab, prov = code.rsplit(".", 1)[0], code.rsplit(".", 2)[0], code[:2]
    return {"type": "Feature", "geometry": geometry, "properties": {
        "kode_kel": code, "nama_kel": name, "kode_kec": kec, "nama_kec": f"Kecamatan {kec}",
        "kode_kab": kab, "nama_kab": f"Kota {kab}", "kode_prov": prov, "nama_prov": f"Provinsi {prov}"}}
