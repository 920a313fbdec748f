def test_healthz(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_locate_inside_demo(client):
    r = client.get("/api/v1/locate", params={"lat": -6.2, "lon": 106.83})
    assert r.status_code == 200
    assert r.json()["status"] == "inside"
