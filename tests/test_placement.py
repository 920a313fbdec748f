"""Camera requests and the placement planner as people use them: who may ask and who may back a
request, the review with reasons the requester reads, the score with its parts, nearby requests
shown together, the public figures, and plans (a small instance whose optimum is known by
construction, budgets, exports, re-runs, comparisons, bad input)."""

from __future__ import annotations

import csv
import io
import math
from datetime import timedelta

import numpy as np
import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from siskamling.accounts import service as accounts
from siskamling.areas import service as areas
from siskamling.audit.models import AuditEvent
from siskamling.audit.service import Actor
from siskamling.cameras import service as cameras
from siskamling.cameras.schemas import CameraIn
from siskamling.core.errors import Conflict, Forbidden, Invalid, NotFound
from siskamling.core.time import utcnow
from siskamling.placement import assess, demand, planner, plans
from siskamling.placement import service as requests_
from siskamling.placement.models import CameraRequest, Incident, Plan, RequestStatus
from tests.conftest import KEL_A, KEL_B, PASSWORD
from tests.helpers import html
from tests.test_cli import city, env, run  # noqa: F401 - fixtures of a CLI database
from tests.test_reports import file as file_report

ACTOR = Actor.system("tests")
RT = KEL_A + ".001.001"
METRE = 1 / 111_195  # degrees of latitude per metre


def principal(db, username):
    return accounts.principal_for(db_session=db, user=accounts.get_user(db_session=db, username=username))


def centre(db, code):
    area = areas.get_by_code(db_session=db, code=code)
    return area.centroid_lat, area.centroid_lon


def resident(db, username, area_code):
    accounts.create_user(db_session=db, username=username, full_name=username.title(), password=PASSWORD, actor=ACTOR)
    accounts.add_grant(db_session=db, username=username, role="warga", area_code=area_code, actor=ACTOR)
    db.flush()
    return principal(db, username)


def ask(db, settings, username="bob", at=RT, north_m=0.0, reason="rawan_kriminalitas", **kw):
    lat, lon = centre(db, at)
    data = requests_.NewRequest(lat=lat + north_m * METRE, lon=lon, reason=reason,
                                description=kw.pop("description", "Gang gelap, sering ada pencurian motor"), **kw)
    return requests_.file_request(db_session=db, settings=settings, principal=principal(db, username), data=data,
                                  actor=Actor(principal(db, username).user_id, username))


def count(db, model) -> int:
    return db.scalar(select(func.count()).select_from(model))


# --- the planner on instances whose optimum is known -------------------------------------------


def line_instance(budget=2.0, costs=(1.0, 1.0, 1.0)):
    """Six demand points of weight 1, 100 m apart on a meridian; radius 160 m. Site X (between
    points 3 and 4) covers four points, sites A (at point 2) and B (at point 5) three each. The
    greedy takes X first and then gains one point (5 in all); the optimum is A + B (all 6)."""
    lat0, lon0 = -6.2, 106.8
    dem_lat = np.array([lat0 + i * 100 * METRE for i in range(6)])
    cand_lat = np.array([lat0 + 2.5 * 100 * METRE, lat0 + 1 * 100 * METRE, lat0 + 4 * 100 * METRE])  # X, A, B
    return planner.Instance(cand_lat, np.full(3, lon0), np.array(costs), dem_lat, np.full(6, lon0), np.ones(6),
                            160.0, budget)


def test_the_exact_solver_finds_the_optimum_the_greedy_misses_and_says_it_is_proven():
    inst = line_instance()
    chosen, _gains, value, bound = planner.greedy(planner.coverage(inst), inst.cost, inst.budget)
    assert chosen[0] == 0 and value == pytest.approx(5), "the greedy falls for the big middle site"
    assert bound >= 6 - 1e-6 and value / 6 >= 1 - 1 / math.e, "its online bound is a true upper bound"
    quick = planner.solve(inst, method="greedy", time_limit=10)  # greedy + the Lagrangian plans, no MIP
    assert quick.greedy_value == pytest.approx(5) and quick.value <= 6 + 1e-9 <= quick.bound + 1e-6
    exact = planner.solve(inst, method="mip", time_limit=10)
    assert sorted(exact.chosen) == [1, 2] and exact.value == pytest.approx(6)
    assert exact.status == "optimal" and exact.gap == pytest.approx(0) and exact.greedy_value == pytest.approx(5)
    assert sum(exact.gains) == pytest.approx(6), "each site's added weight, in rank order, adds up to the value"


def test_a_budget_with_unequal_costs_picks_what_it_can_afford():
    # A and B cost 2 each, X costs 1; a budget of 3 cannot buy A + B: X with A or B (5 points) is the best.
    result = planner.solve(line_instance(budget=3.0, costs=(1.0, 2.0, 2.0)), method="mip", time_limit=10)
    assert sorted(result.chosen) in ([0, 1], [0, 2]) and result.value == pytest.approx(5)
    assert result.status == "optimal" and all(isinstance(j, int) for j in result.chosen)
    # Merged rows: points covered by the same sites are one row for the solver.
    cov = planner.coverage(line_instance())
    assert cov.matrix.shape == (3, 4) and cov.points_covered.tolist() == [1, 2, 2, 1]  # {A} {A,X} {X,B} {B}


def test_with_unequal_costs_the_greedy_bound_counts_sites_that_no_longer_fit():
    """Site A (cost 50) covers 110, B (cost 60) covers 120, nine sites of cost 1 cover 1.5 each;
    budget 100. The greedy takes A, then B no longer fits: 123.5. The optimum is B and the nine
    (133.5); the greedy's bound must not claim 123.5 is optimal (B still counts in it)."""
    n = 11
    lat = np.array([-6.2 + i * 1000 * METRE for i in range(n)])  # 1 km apart: each covers its own point
    inst = planner.Instance(lat, np.full(n, 106.8), np.array([50.0, 60.0] + [1.0] * 9), lat, np.full(n, 106.8),
                            np.array([110.0, 120.0] + [1.5] * 9), 100.0, 100.0)
    _chosen, _gains, value, bound = planner.greedy(planner.coverage(inst), inst.cost, inst.budget)
    assert value == pytest.approx(123.5) and bound >= 133.5 - 1e-9
    best = planner.solve(inst, time_limit=20)
    assert best.value == pytest.approx(133.5) and best.status == "optimal" and 0 not in best.chosen


def test_the_lagrangian_bound_is_tight_on_a_random_instance_the_mip_solves():
    rng = np.random.default_rng(5)
    n_dem, n_cand = 3000, 200
    lat = -6.2 + rng.normal(0, 0.01, n_dem)
    lon = 106.8 + rng.normal(0, 0.01, n_dem)
    pick = rng.integers(0, n_dem, n_cand)
    inst = planner.Instance(lat[pick], lon[pick], np.ones(n_cand), lat, lon, rng.choice([1.0, 3.0], n_dem), 300, 8)
    exact = planner.solve(inst, method="mip", time_limit=30)
    quick = planner.solve(inst, method="greedy", time_limit=30)
    assert exact.status == "optimal"
    assert quick.value <= exact.value + 1e-6 <= quick.bound + 1e-6, "greedy ≤ optimum ≤ the bound it proves"
    assert quick.value / exact.value >= 1 - 1 / math.e


# --- asking, backing, reviewing ----------------------------------------------------------------


def test_a_ketua_rt_asks_and_bad_requests_store_nothing(db, settings):
    req = ask(db, settings, hours=requests_.parse_hours("18-24, 0-5"))
    assert req.code.startswith("KM") and req.status == "diajukan" and req.area_path.endswith("/001/001")
    assert req.hours == [[18, 24], [0, 5]] and req.site_type == "jalan", "the reason suggests the site type"
    assert req.score is not None and set(req.score_parts["parts"]) == set(assess.PARTS)
    assert db.scalar(select(AuditEvent).where(AuditEvent.action == "camera_request.filed")).object_id == req.code
    before = count(db, CameraRequest)
    with pytest.raises(Forbidden):
        ask(db, settings, username="warga")  # no grant: not a ketua RT/RW, FKDM or operator
    with pytest.raises(Forbidden):
        ask(db, settings, username="dina")  # a ketua RT of kelurahan B, asking in A
    with pytest.raises(Invalid, match="outside the service area"):
        requests_.file_request(db_session=db, settings=settings, principal=principal(db, "bob"), actor=ACTOR,
                               data=requests_.NewRequest(lat=-7.5, lon=110.4, reason="pasar",
                                                         description="Jauh sekali dari kota"))
    with pytest.raises(Invalid):
        ask(db, settings, reason="ufo")
    with pytest.raises(Invalid):
        requests_.parse_hours("malam")
    assert count(db, CameraRequest) == before


def test_residents_back_a_request_once_each_and_only_in_their_own_rw(db, settings):
    req = ask(db, settings)
    neighbour = resident(db, "tetangga", KEL_A + ".001.002")  # another RT of the same RW
    requests_.support(db_session=db, settings=settings, principal=neighbour, req=req, actor=ACTOR)
    assert req.support_count == 1 and req.score_parts["parts"]["support"]["supporters"] == 1, "scored again"
    with pytest.raises(Conflict):
        requests_.support(db_session=db, settings=settings, principal=neighbour, req=req, actor=ACTOR)
    far = resident(db, "jauh", KEL_A + ".002.001")
    with pytest.raises(Forbidden):
        requests_.support(db_session=db, settings=settings, principal=far, req=req, actor=ACTOR)
    # The RW's residents see its requests (to back them); another RW's do not.
    assert [r.code for r in requests_.listing(db_session=db, principal=neighbour)] == [req.code]
    assert requests_.listing(db_session=db, principal=far) == []
    with pytest.raises(NotFound):
        requests_.get_visible(db_session=db, principal=far, code=req.code)
    with pytest.raises(Forbidden):
        requests_.support(db_session=db, settings=settings, principal=principal(db, "alice"), req=req, actor=ACTOR)  # an operator
    with pytest.raises(Conflict):
        requests_.support(db_session=db, settings=settings, principal=principal(db, "bob"), req=req, actor=ACTOR)  # the requester
    assert req.support_count == 1


def test_the_review_moves_step_by_step_with_reasons_and_ends_linked_to_the_camera(db, settings):
    req = ask(db, settings)
    alice, charlie = principal(db, "alice"), principal(db, "charlie")
    with pytest.raises(NotFound):
        requests_.get_visible(db_session=db, principal=charlie, code=req.code)  # another kelurahan's operator
    with pytest.raises(Forbidden):
        requests_.change_status(db_session=db, settings=settings, principal=charlie, req=req,
                                to=RequestStatus.ditinjau, reason=None, actor=ACTOR)
    with pytest.raises(Forbidden):
        requests_.change_status(db_session=db, settings=settings, principal=principal(db, "bob"), req=req,
                                to=RequestStatus.ditinjau, reason=None, actor=ACTOR)
    with pytest.raises(Invalid):  # not without a survey
        requests_.change_status(db_session=db, settings=settings, principal=alice, req=req,
                                to=RequestStatus.terpasang, reason="Sudah", actor=ACTOR)
    requests_.change_status(db_session=db, settings=settings, principal=alice, req=req, to=RequestStatus.ditinjau,
                            reason=None, actor=ACTOR)
    with pytest.raises(Invalid, match="reason"):
        requests_.change_status(db_session=db, settings=settings, principal=alice, req=req,
                                to=RequestStatus.disetujui, reason="", actor=ACTOR)
    requests_.change_status(db_session=db, settings=settings, principal=alice, req=req, to=RequestStatus.disetujui,
                            reason="Titik rawan, tiang PJU tersedia, masuk anggaran 2027", actor=ACTOR)
    assert req.status_reason.startswith("Titik rawan")
    with pytest.raises(Invalid):
        requests_.change_status(db_session=db, settings=settings, principal=alice, req=req,
                                to=RequestStatus.terpasang, reason=None, camera_code="TIDAK-ADA", actor=ACTOR)
    lat, lon = req.lat, req.lon
    old = cameras.register(db_session=db, settings=settings, actor=ACTOR, data=CameraIn(
        code="CAM-OLD", name="Sudah ada", lat=lat, lon=lon, stream_url="rtsp://10.0.0.4/a"))
    old.created_at = req.created_at - timedelta(days=30)
    with pytest.raises(Invalid, match="registered before"):
        requests_.change_status(db_session=db, settings=settings, principal=alice, req=req,
                                to=RequestStatus.terpasang, reason=None, camera_code="CAM-OLD", actor=ACTOR)
    camera = cameras.register(db_session=db, settings=settings, actor=ACTOR, data=CameraIn(
        code="CAM-KM", name="Gang Mawar", lat=lat + 20 * METRE, lon=lon, stream_url="rtsp://10.0.0.5/a"))
    requests_.change_status(db_session=db, settings=settings, principal=alice, req=req, to=RequestStatus.terpasang,
                            reason=None, camera_code="cam-km", actor=ACTOR)  # codes are matched whatever the case
    assert req.camera_id == camera.id and req.status == "terpasang"
    steps = requests_.history(db_session=db, req=req)
    assert [s.status_to for s in steps] == ["diajukan", "ditinjau", "disetujui", "terpasang"]
    assert requests_.get_visible(db_session=db, principal=principal(db, "bob"), code=req.code) is req
    second = ask(db, settings, north_m=30)
    for to in (RequestStatus.ditinjau, RequestStatus.disetujui):
        requests_.change_status(db_session=db, settings=settings, principal=alice, req=second, to=to,
                                reason="Disurvei dan disetujui", actor=ACTOR)
    with pytest.raises(Invalid, match="already linked"):
        requests_.change_status(db_session=db, settings=settings, principal=alice, req=second,
                                to=RequestStatus.terpasang, reason=None, camera_code="CAM-KM", actor=ACTOR)


def test_the_score_shows_how_it_was_formed(db, settings):
    lat, lon = centre(db, RT)
    lone = ask(db, settings)
    parts = lone.score_parts["parts"]
    assert parts["gap"]["distance_m"] is None and parts["gap"]["value"] == 1.0, "no camera anywhere near"
    assert parts["need"]["weighted"] == 0 and parts["support"]["supporters"] == 0
    for _ in range(2):
        file_report(db, settings, category="kriminalitas", attributes={"sedang_terjadi": "tidak"})
    db.add(Incident(source="damkar", source_ref="x1", kind="kebakaran", occurred_at=utcnow() - timedelta(days=30),
                    lat=lat, lon=lon, area_path=lone.area_path, placed_by="point"))
    db.add(Incident(source="damkar", source_ref="x2", kind="kebakaran", occurred_at=utcnow() - timedelta(days=400),
                    lat=lat, lon=lon, area_path=lone.area_path, placed_by="point"))  # older than 12 months
    cameras.register(db_session=db, settings=settings, actor=ACTOR, data=CameraIn(
        code="CAM-S", name="S", lat=lat + 400 * METRE, lon=lon, stream_url="rtsp://10.0.0.6/a"))
    db.flush()
    result = assess.store(db_session=db, settings=settings, req=lone)
    parts = result["parts"]
    assert 390 <= parts["gap"]["distance_m"] <= 410 and parts["gap"]["value"] == pytest.approx(0.4, abs=0.02)
    w = settings.placement_category_weights
    assert parts["need"]["weighted"] == pytest.approx(2 * w["kriminalitas"] + w["kebakaran"])
    assert parts["need"]["counts"] == {"kriminalitas": 2, "kebakaran": 1}
    assert result["score"] == pytest.approx(sum(p["points"] for p in parts.values()), abs=0.05)
    assert lone.score == result["score"]


def test_open_requests_are_scored_again_when_a_camera_goes_up_nearby(db, settings):
    req = ask(db, settings)
    before = req.score
    cameras.register(db_session=db, settings=settings, actor=ACTOR, data=CameraIn(
        code="CAM-BARU", name="Baru", lat=req.lat + 50 * METRE, lon=req.lon, stream_url="rtsp://10.0.0.8/a"))
    assert assess.reassess_all(db_session=db, settings=settings) >= 1
    assert req.score_parts["parts"]["gap"]["camera"] == "CAM-BARU" and req.score < before


def test_nearby_requests_are_shown_together(db, settings):
    one = ask(db, settings)
    two = ask(db, settings, username="alice", north_m=60)
    far = ask(db, settings, username="alice", at=KEL_A + ".002.001")
    assert [r.code for r, _d in requests_.nearby(db_session=db, settings=settings, lat=one.lat, lon=one.lon,
                                                  exclude_id=one.id, viewer=principal(db, "bob"))] == [two.code]
    # Only what the asker may see: another kelurahan's operator is told nothing about them.
    assert requests_.nearby(db_session=db, settings=settings, lat=one.lat, lon=one.lon,
                            viewer=principal(db, "charlie")) == []
    groups = requests_.groups([one, two, far], settings.request_group_radius_m)
    assert sorted(len(g.requests) for g in groups) == [1, 2]


# --- incidents ---------------------------------------------------------------------------------


def test_incident_logs_are_placed_at_their_rw_and_a_bad_row_keeps_nothing(db, tmp_path):
    good = tmp_path / "damkar.csv"
    good.write_text("kode_kel_kemendagri,no,tanggal,keterangan_jkb,waktu_informasi,rt,rw\n"
                    f"{KEL_A},1,1/2/2013,Bencana Kebakaran,10:05,5,2\n"
                    f"{KEL_A},2,12/31/2013,Pertolongan Gawat Darurat (Ambulan Transportasi).,23:30,1,77\n")
    assert demand.import_incidents(db_session=db, path=good, source="damkar", actor=ACTOR).count == 2
    rows = {i.source_ref: i for i in db.scalars(select(Incident).where(Incident.source == "damkar"))}
    rw2 = areas.get_by_code(db_session=db, code=KEL_A + ".002")
    assert rows["1"].placed_by == "rw" and rows["1"].lat == pytest.approx(rw2.centroid_lat)
    assert rows["1"].kind == "kebakaran" and rows["1"].occurred_at.isoformat() == "2013-01-02T03:05:00+00:00"
    assert rows["2"].placed_by == "kelurahan" and rows["2"].kind == "gawat_darurat", "RW 77 has no polygon"
    assert demand.import_incidents(db_session=db, path=good, source="damkar", actor=ACTOR).count == 0, "re-import skips"
    bad = tmp_path / "bad.csv"
    bad.write_text("kode_kel_kemendagri,no,tanggal,keterangan_jkb,rw\n"
                   f"{KEL_A},3,3/3/2013,Bencana Kebakaran,1\n"
                   "31.99.99.9999,4,3/3/2013,Bencana Kebakaran,1\n"
                   f"{KEL_A},5,kemarin,Bencana Kebakaran,1\n")
    with pytest.raises(Invalid) as err:
        demand.import_incidents(db_session=db, path=bad, source="damkar", actor=ACTOR)
    assert "line 3" in str(err.value) and "line 4" in str(err.value)
    assert db.scalar(select(func.count()).select_from(Incident).where(Incident.source_ref == "3")) == 0
    unplaced = tmp_path / "unplaced.csv"
    unplaced.write_text("kode_kel_kemendagri,no,tanggal,keterangan_jkb,rw\n"
                        f"{KEL_A},6,3/3/2013,Bencana Kebakaran,1\n,7,3/4/2013,Bencana Kebakaran,\n")
    with pytest.raises(Invalid, match="line 3"):
        demand.import_incidents(db_session=db, path=unplaced, source="damkar", actor=ACTOR)
    done = demand.import_incidents(db_session=db, path=unplaced, source="damkar", actor=ACTOR, skip_unplaced=True)
    assert done.count == 1 and done.unplaced == [3]


# --- plans -------------------------------------------------------------------------------------


def test_a_plan_covers_the_demand_proves_its_gap_and_exports_runs_again_and_compares(db, settings):
    hot = ask(db, settings)  # where the crime reports are
    quiet = ask(db, settings, username="alice", at=KEL_A + ".002.001", reason="taman_24_jam")
    for _ in range(3):
        file_report(db, settings, category="kriminalitas", attributes={"sedang_terjadi": "tidak"})
    file_report(db, settings, category="sampah", at=KEL_A + ".002.001")  # a little need at the park
    inputs = plans.PlanInputs(name="Anggaran 2027", mode="count", count=1, area_code=KEL_A, include_generated=False)
    plan = plans.make_plan(db_session=db, settings=settings, inputs=inputs, actor=ACTOR)
    assert [s.request_id for s in plan.sites] == [hot.id] and quiet.id not in [s.request_id for s in plan.sites]
    assert plan.status == "optimal" and plan.gap == pytest.approx(0)
    assert plan.value == pytest.approx(3 * settings.placement_category_weights["kriminalitas"])
    assert plan.inputs["radius_m"] == settings.placement_coverage_radius_m, "defaults are saved explicitly"
    body = plans.export_csv(db, plan).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(body)))
    assert rows[0]["Permintaan"] == hot.code and rows[0]["Kelurahan"] == "Sukamaju" and float(rows[0]["Biaya (Rp)"]) > 0
    assert rows[0]["Jenis lokasi"] == "Jalan", "headings and words in Indonesian, for the budget document"
    book = load_workbook(io.BytesIO(plans.export_xlsx(db, plan)))
    assert book["Lokasi"]["C2"].value == hot.code
    summary = {r[0].value: r[1].value for r in book["Ringkasan"].iter_rows()}
    assert summary["Celah optimalitas"] == 0 and summary["Titik"] == 1 and summary["Hasil"] == "terbukti optimal"
    # A camera goes up at the hot spot: run again, the demand there is covered already.
    cameras.register(db_session=db, settings=settings, actor=ACTOR, data=CameraIn(
        code="CAM-HOT", name="Hot", lat=hot.lat, lon=hot.lon, stream_url="rtsp://10.0.0.7/a"))
    again = plans.rerun(db_session=db, settings=settings, plan=plan, actor=ACTOR)
    assert again.rerun_of_id == plan.id and again.inputs == plan.inputs
    assert again.already_covered >= plan.value - 1e-6 and [s.request_id for s in again.sites] == [quiet.id]
    comparison = plans.compare(plan, again)
    assert comparison.input_changes == [] and not comparison.common
    assert [s.request_id for s in comparison.only_a] == [hot.id] and [s.request_id for s in comparison.only_b] == [quiet.id]


def test_plans_refuse_bad_input_and_store_nothing(db, settings):
    ask(db, settings)
    file_report(db, settings, category="kriminalitas", attributes={"sedang_terjadi": "tidak"})
    before = count(db, Plan)
    cases = [
        (plans.PlanInputs(name="x", mode="budget", budget=1_000_000, area_code=KEL_A), "below the cost"),
        (plans.PlanInputs(name="x", mode="count", count=2, area_code=KEL_B, include_generated=False), "no candidate"),
        (plans.PlanInputs(name="x", mode="count", count=0), "number of cameras"),
        (plans.PlanInputs(name="", mode="count", count=1), "name"),
        (plans.PlanInputs(name="x", mode="count", count=1, site_costs={"kapal": 5}), "site types"),
        (plans.PlanInputs(name="x", mode="count", count=1, since="2026-05-01", until="2026-01-01"), "period"),
        (plans.PlanInputs(name="x", mode="count", count=1, area_code="00.00"), "Unknown area"),
        (plans.PlanInputs(name="x", mode="budget", budget=float("inf")), "ordinary numbers"),
        (plans.PlanInputs(name="x", mode="count", count=1, unit_cost=float("nan")), "ordinary numbers"),
        (plans.PlanInputs(name="x", mode="count", count=1, unit_cost=0), "above zero"),
        (plans.PlanInputs(name="x", mode="count", count=1, time_limit=-5), "time limit"),
    ]
    for inputs, message in cases:
        with pytest.raises(Invalid, match=message):
            plans.make_plan(db_session=db, settings=settings, inputs=inputs, actor=ACTOR)
    assert count(db, Plan) == before


def test_a_budget_plan_uses_the_costs_per_site_type_and_generated_sites(db, settings):
    ask(db, settings, reason="taman_24_jam")  # a park camera: dearer
    for _ in range(2):
        file_report(db, settings, category="kriminalitas", attributes={"sedang_terjadi": "tidak"},
                    at=KEL_A + ".002.001")
    inputs = plans.PlanInputs(name="Rp 100 juta", mode="budget", budget=100_000_000, area_code=KEL_A,
                              unit_cost=30_000_000, site_costs={"taman_24_jam": 80_000_000})
    plan = plans.make_plan(db_session=db, settings=settings, inputs=inputs, actor=ACTOR)
    assert plan.cost <= 100_000_000
    kinds = {s.kind for s in plan.sites}
    assert "generated" in kinds, "a site is generated where the reports are, away from every request"
    assert all(s.cost == (80_000_000 if s.site_type == "taman_24_jam" else 30_000_000) for s in plan.sites)


# --- pages -------------------------------------------------------------------------------------


def test_asking_following_and_deciding_through_the_pages(db, settings, login_as):
    lat, lon = centre(db, RT)
    bob = login_as("bob")
    page = html(bob.get("/permintaan-kamera/baru"))
    assert page.select_one("form#request-form select[name=reason]") is not None
    bad = bob.post("/permintaan-kamera", {"lat": "-7.5", "lon": "110.4", "reason": "pasar",
                                          "description": "Pasar pagi ramai sekali"})
    assert bad.status_code == 422 and html(bad).select_one("#form-error").text.strip()
    assert count(db, CameraRequest) == 0
    sent = bob.post("/permintaan-kamera", {"lat": str(lat), "lon": str(lon), "reason": "gang_gelap",
                                           "description": "Gang tanpa lampu, rawan jambret", "hours": "18-24"})
    assert sent.status_code == 303
    code = sent.headers["location"].split("/")[-1].split("?")[0]
    page = html(bob.get(f"/permintaan-kamera/{code}?baru=1"))
    assert page.select_one("#filed") and page.select_one("#code").text == code
    assert len(page.select("#score-parts tbody tr")) == 5 and page.select_one("#review") is None
    near = html(bob.get(f"/permintaan-kamera/sekitar?lat={lat}&lon={lon}"))
    assert near.select_one(f"li[data-code={code}]") is not None
    alice = login_as("alice")
    assert alice.post(f"/permintaan-kamera/{code}/status", {"to": "ditinjau"}).status_code == 303
    refused = alice.post(f"/permintaan-kamera/{code}/status", {"to": "ditolak", "reason": ""})
    assert refused.status_code == 422 and html(refused).select_one("#action-error")
    alice.post(f"/permintaan-kamera/{code}/status", {"to": "ditunda", "reason": "Menunggu APBD perubahan"})
    page = html(bob.get(f"/permintaan-kamera/{code}"))
    assert page.select_one("#status-reason").text.strip().endswith("Menunggu APBD perubahan")
    assert login_as("charlie").get(f"/permintaan-kamera/{code}").status_code == 404
    figures = html(login_as("charlie").client.get("/statistik-kamera"))
    row = figures.select_one(f"tr[data-code='{KEL_A}']")
    assert row.select_one("td[data-status=ditunda]").text == "1" and str(lat)[:7] not in figures.text


def test_admins_plan_on_a_map_and_export_through_the_pages(db, settings, login_as):
    ask(db, settings)
    file_report(db, settings, category="kriminalitas", attributes={"sedang_terjadi": "tidak"})
    assert login_as("alice").get("/rencana-kamera").status_code == 403, "operators do not make plans"
    admin = login_as("admin")
    bad = admin.post("/rencana-kamera", {"name": "x", "mode": "budget", "budget": "1000", "unit_cost": "35000000",
                                         "radius_m": "150", "include_requests": "on", "method": "auto",
                                         "time_limit": "10"})
    assert bad.status_code == 422 and "Rp" in html(bad).select_one("#plan-error").text
    for field, value in (("budget", "inf"), ("budget", "nan"), ("time_limit", "0")):
        refused = admin.post("/rencana-kamera", {"name": "x", "mode": "budget", "budget": "200000000",
                                                 "unit_cost": "35000000", "radius_m": "150", "time_limit": "10",
                                                 "include_requests": "on", "method": "auto"} | {field: value})
        assert refused.status_code == 422, (field, value)
    assert count(db, Plan) == 0
    typed = admin.post("/rencana-kamera", {"name": "Rupiah", "mode": "budget", "budget": "Rp 100.000.000",
                                           "unit_cost": "35.000.000", "radius_m": "150", "area_code": KEL_A,
                                           "include_requests": "on", "include_generated": "on", "method": "auto",
                                           "time_limit": "10"})
    assert typed.status_code == 303, html(typed).select_one("#plan-error")
    saved = db.get(Plan, int(typed.headers["location"].rsplit("/", 1)[-1]))
    assert saved.inputs["budget"] == 100_000_000 and saved.inputs["count"] is None and saved.cost <= 100_000_000
    made = admin.post("/rencana-kamera", {"name": "Uji", "mode": "count", "count": "2", "area_code": KEL_A,
                                          "radius_m": "150", "unit_cost": "35000000", "include_requests": "on",
                                          "include_generated": "on", "method": "auto", "time_limit": "10"})
    assert made.status_code == 303
    page = html(admin.get(made.headers["location"]))
    assert page.select_one("#gap").text.strip().startswith("0,00 %") and page.select("#sites tbody tr")
    assert page.select_one("#inputs dd[data-input=count]").text.strip() == "2"
    plan_id = made.headers["location"].rsplit("/", 1)[-1]
    lat_b, lon_b = centre(db, KEL_B)
    cameras.register(db_session=db, settings=settings, actor=ACTOR, data=CameraIn(
        code="CAM-PETA", name="Peta", lat=lat_b, lon=lon_b, stream_url="rtsp://10.0.0.9/a"))
    db.commit()
    geo = admin.get(f"/rencana-kamera/{plan_id}/lokasi.geojson").json()
    assert any(f["properties"].get("rank") == 1 for f in geo["features"])
    assert [f["properties"]["code"] for f in geo["features"] if f["properties"]["kind"] == "camera"] == ["CAM-PETA"]
    xlsx = admin.get(f"/rencana-kamera/{plan_id}/ekspor.xlsx")
    assert xlsx.status_code == 200 and load_workbook(io.BytesIO(xlsx.content))["Lokasi"]["A2"].value == 1
    again = admin.post(f"/rencana-kamera/{plan_id}/ulang")
    other = again.headers["location"].rsplit("/", 1)[-1]
    compared = html(admin.get(f"/rencana-kamera/banding?a={plan_id}&b={other}"))
    assert compared.select_one("#comparison") is not None


# --- the command line --------------------------------------------------------------------------


def test_the_command_line_loads_incidents_and_population_and_makes_a_plan(city, run, tmp_path):  # noqa: F811
    population = tmp_path / "pop.csv"
    population.write_text("kode_kemendagri,total\n98.71.01.1001,41000\n98.71.01.1002,12000\n")
    assert "population set for 2 kelurahan" in run("areas", "population", str(population)).output
    log = tmp_path / "log.csv"
    log.write_text("id,occurred_at,kind,lat,lon\n"
                   "a,2013-03-01T10:00:00+07:00,kebakaran,-0.995,100.005\n"
                   "b,2013-04-01T10:00:00+07:00,kebakaran,-0.9951,100.0051\n"
                   "c,2013-05-01T10:00:00+07:00,banjir,-0.995,100.015\n")
    loaded = run("incidents", "import", str(log), "--source", "bpbd")
    assert loaded.exit_code == 0 and "3 incident(s)" in loaded.output
    bad = tmp_path / "bad.csv"
    bad.write_text("id,occurred_at,kind,lat,lon\nz,2013-03-01T10:00:00,kebakaran,-0.995,100.005\n")
    refused = run("incidents", "import", str(bad), "--source", "bpbd")
    assert refused.exit_code == 1 and "line 2" in refused.output + (refused.stderr or "")
    out = tmp_path / "plan.xlsx"
    made = run("plan", "run", "--name", "Uji CLI", "--count", "1", "--since", "2013-01-01", "--until", "2014-01-01",
               "-o", str(out))
    assert made.exit_code == 0, made.output
    assert "1 site(s)" in made.output and "gap 0.00 %" in made.output
    sheet = load_workbook(out)["Lokasi"]
    assert sheet["F2"].value == "Satu" and sheet["K2"].value == pytest.approx(4.0), "the two fires, weight 2 each"
    poor = run("plan", "run", "--name", "x", "--budget", "1000")
    assert poor.exit_code == 1 and "below the cost of one camera site" in poor.output + (poor.stderr or "")
    both = run("plan", "run", "--name", "x", "--budget", "1000", "--count", "2")
    assert both.exit_code != 0


# --- the JSON API ------------------------------------------------------------------------------


def test_the_json_api_asks_backs_decides_and_plans(db, settings, client, token_for):
    lat, lon = centre(db, RT)
    bob = token_for("bob")
    bad = client.post("/api/v1/camera-requests", headers=bob, json={"lat": -7.5, "lon": 110.4, "reason": "pasar",
                                                                     "description": "Pasar pagi yang ramai"})
    assert bad.status_code == 422 and "outside the service area" in bad.text.lower() or "luar" in bad.text.lower()
    made = client.post("/api/v1/camera-requests", headers=bob, json={
        "lat": lat, "lon": lon, "reason": "gang_gelap", "description": "Gang tanpa lampu di belakang pasar",
        "hours": "18-24"})
    assert made.status_code == 201, made.text
    body = made.json()
    code = body["code"]
    assert body["hours"] == [[18, 24]] and set(body["score_parts"]) == set(assess.PARTS) and body["mine"]
    resident(db, "tetangga", KEL_A + ".001.002")
    db.commit()
    backed = client.post(f"/api/v1/camera-requests/{code}/support", headers=token_for("tetangga"))
    assert backed.status_code == 200 and backed.json()["support_count"] == 1
    assert all(step["by"] is None for step in backed.json()["history"]), "who backed it is not shown"
    again = client.post(f"/api/v1/camera-requests/{code}/support", headers=token_for("tetangga"))
    assert again.status_code == 409
    assert client.get(f"/api/v1/camera-requests/{code}", headers=token_for("charlie")).status_code == 404
    alice = token_for("alice")
    assert client.post(f"/api/v1/camera-requests/{code}/status", headers=alice,
                       json={"status": "dipasang"}).status_code == 422
    decided = client.post(f"/api/v1/camera-requests/{code}/status", headers=alice,
                          json={"status": "ditolak", "reason": "Sudah ada kamera swasta yang menghadap gang"})
    assert decided.status_code == 200 and decided.json()["status_reason"].startswith("Sudah ada")
    assert [r["code"] for r in client.get("/api/v1/camera-requests?mine=true", headers=bob).json()] == [code]
    assert client.post("/api/v1/plans", headers=alice, json={"name": "x", "count": 1}).status_code == 403
    admin = token_for("admin")
    file_report(db, settings, category="kriminalitas", attributes={"sedang_terjadi": "tidak"})
    db.commit()
    plan = client.post("/api/v1/plans", headers=admin, json={"name": "API", "count": 1, "area_code": KEL_A})
    assert plan.status_code == 201, plan.text
    out = plan.json()
    assert out["gap"] == 0 and out["sites"][0]["kind"] == "generated", "the refused request is no candidate"
    assert client.get(f"/api/v1/plans/{out['id']}", headers=admin).json()["value"] == out["value"]
    assert client.post("/api/v1/plans", headers=admin, json={"name": "x", "count": 1, "budget": 5}).status_code == 422
    nan = client.post("/api/v1/plans", headers={**admin, "Content-Type": "application/json"},
                      content='{"name": "x", "budget": NaN}')
    assert nan.status_code == 422
    assert len(client.get("/api/v1/plans", headers=admin).json()) == 1
