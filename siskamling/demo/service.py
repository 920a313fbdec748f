"""Load the demo: areas (generated, or real boundary files) and one account per role."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from siskamling.accounts import service as accounts
from siskamling.areas import importer
from siskamling.areas import service as areas
from siskamling.areas.models import Area, Level
from siskamling.audit.service import Actor
from siskamling.core.config import Settings
from siskamling.core.permissions import MFA_ROLES
from siskamling.core.time import utcnow
from siskamling.demo.city import generate

ACTOR = Actor.system("demo")

# The options that read Jakarta's boundary files (../shared/data/boundaries/ and the same
# sources): Kemendagri codes in kode_kel, RW numbers in rw_no under kode_kel_kemendagri.
KELURAHAN_OPTIONS = dict(code_prop="kode_kel", name_prop="nama_kel", parent_prop="kode_kec")
RW_OPTIONS = dict(parent_prop="kode_kel_kemendagri", number_prop="rw_no", attr_props=["floodprone"],
                  on_duplicate=importer.OnDuplicate.merge, on_missing_code=importer.OnMissingCode.skip)


@dataclass(frozen=True)
class DemoAccount:
    username: str
    role: str | None
    area_code: str | None
    password: str
    totp_secret: str | None = None
    note: str = ""


def import_areas(db_session: Session, folder: Path, kelurahan: Path | None, rw: Path | None,
                 names: Path | None = None) -> None:
    if kelurahan is None:
        paths = generate(folder)
        _import(db_session, paths["kelurahan"], Level.kelurahan, **KELURAHAN_OPTIONS)
        _import(db_session, paths["rw"], Level.rw, parent_prop="kode_kel", number_prop="rw_no",
                attr_props=["floodprone"])
        _import(db_session, paths["rt"], Level.rt, parent_prop="kode_rw", number_prop="rt_no")
        return
    code_names = importer.read_names(names) if names else {}
    _import(db_session, kelurahan, Level.kelurahan, names=code_names, **KELURAHAN_OPTIONS)
    if rw is not None:
        _import(db_session, rw, Level.rw, **RW_OPTIONS)


def _import(db_session: Session, path: Path, level: Level, **options) -> None:
    report = areas.import_file(db_session=db_session, path=path,
                               opts=importer.ImportOptions(level=level, **options), actor=ACTOR)
    print(f"  {path.name}: {report.summary()}")


def _home_kelurahan(db_session: Session) -> Area:
    """The kelurahan the demo accounts watch: the first by code that has RWs."""
    with_rw = select(Area.parent_id).where(Area.level == Level.rw)
    kel = db_session.scalar(select(Area).where(Area.level == Level.kelurahan, Area.id.in_(with_rw)).order_by(Area.code))
    return kel or db_session.scalar(select(Area).where(Area.level == Level.kelurahan).order_by(Area.code))


def _children(db_session: Session, area: Area) -> list[Area]:
    return list(db_session.scalars(select(Area).where(Area.parent_id == area.id).order_by(Area.code)))


def create_accounts(db_session: Session, settings: Settings) -> list[DemoAccount]:
    root = db_session.scalar(select(Area).where(Area.parent_id.is_(None)).order_by(Area.code))
    kel = _home_kelurahan(db_session)
    rws = _children(db_session, kel)
    if not rws:
        rws = [areas.add_area(db_session=db_session, level=Level.rw, parent_code=kel.code, number=1, name=None,
                              actor=ACTOR)]
    rw1 = rws[0]
    rts = _children(db_session, rw1)
    if not rts:
        rts = [areas.add_area(db_session=db_session, level=Level.rt, parent_code=rw1.code, number=n, name=None,
                              actor=ACTOR) for n in (1, 2, 3)]
    # A second kelurahan with its own operator shows that areas do not see each other.
    other = db_session.scalar(select(Area).where(Area.level == Level.kelurahan, Area.id != kel.id).order_by(Area.code))
    now = utcnow()
    plan = [
        ("admin", "Admin Diskominfotik", "admin", root, None, "Diskominfotik"),
        ("operator", "Operator Kelurahan " + kel.name, "operator", kel, None, "Kelurahan " + kel.name),
        ("officer", "Petugas Kelurahan " + kel.name, "officer", kel, None, "Kelurahan " + kel.name),
        ("ketua.rw", f"Ketua {rw1.name}", "ketua_rw", rw1, None, None),
        ("ketua.rt", f"Ketua {rts[0].name}", "ketua_rt", rts[0], None, None),
        ("fkdm", "Anggota FKDM " + kel.name, "fkdm", kel, None, None),
        ("satpam", "Satpam " + rw1.name, "satpam", rw1, (now - timedelta(hours=1), now + timedelta(hours=12)), None),
        ("linmas", "Linmas " + kel.name, "linmas", kel, None, None),
        ("warga", "Warga Demo", "warga", rts[min(1, len(rts) - 1)], None, None),  # a resident of RW 1
    ]
    if other is not None:
        plan.append(("operator2", "Operator Kelurahan " + other.name, "operator", other, None, "Kelurahan " + other.name))
    out = []
    for username, full_name, role, area, window, unit in plan:
        password = secrets.token_urlsafe(9)
        user = accounts.create_user(db_session=db_session, username=username, full_name=full_name,
                                    password=password, unit=unit, actor=ACTOR)
        note = ""
        if role:
            starts, ends = window or (None, None)
            accounts.add_grant(db_session=db_session, username=username, role=role, area_code=area.code,
                               starts_at=starts, ends_at=ends, actor=ACTOR)
            if window:
                note = "duty grant for the next 12 hours"
        secret = None
        if role in MFA_ROLES:
            secret = accounts.new_totp_secret()
            accounts.install_totp_secret(settings=settings, user=user, secret=secret)
        out.append(DemoAccount(username, role, area.code if area else None, password, secret, note))
    return out


DEMO_CAMERAS = [  # (code suffix, name, site type, which RW of the home kelurahan, shared at, neighbours)
    ("TMN-01", "Taman 24 Jam", "taman_24_jam", 0, Level.kelurahan, True),
    ("BJR-01", "Pintu Air (rawan banjir)", "rawan_bencana", 1, Level.kelurahan, True),
    ("JLN-01", "Simpang Jalan Utama", "jalan", 2, Level.kelurahan, False),
    ("PSR-01", "Pasar Pagi", "pasar", 3, Level.rw, False),
]


def create_cameras(db_session: Session, settings: Settings, folder: Path) -> list[str]:
    """A few simulated cameras in the home kelurahan, each looping a clip the project generates."""
    from siskamling.cameras import service as cameras
    from siskamling.cameras.schemas import CameraIn
    from siskamling.cameras.simulate import ensure_demo_clips

    kel = _home_kelurahan(db_session)
    rws = _children(db_session, kel) or [kel]
    plan = [(f"DEMO-{suffix}", name, site, rws[i % len(rws)], level, neighbours)
            for suffix, name, site, i, level, neighbours in DEMO_CAMERAS]
    clips = ensure_demo_clips(folder / "clips", [(code, f"{name} · {code}") for code, name, *_ in plan], seconds=30)
    codes = []
    for code, name, site, area, level, neighbours in plan:
        lat, lon = (area.centroid_lat, area.centroid_lon) if area.centroid_lat is not None else (
            kel.centroid_lat, kel.centroid_lon)
        cameras.register(db_session=db_session, settings=settings, actor=ACTOR, data=CameraIn(
            code=code, name=f"{name} {area.name}", lat=lat, lon=lon, site_type=site,
            stream_url=f"file://{clips[code].resolve()}", share_level=level, share_neighbours=neighbours,
            retention_days=3))
        codes.append(code)
    return codes


def save_accounts(path: Path, accounts_: list[DemoAccount]) -> None:
    path.write_text(json.dumps([a.__dict__ for a in accounts_], indent=1))
    path.chmod(0o600)


def load_accounts(path: Path) -> list[DemoAccount]:
    return [DemoAccount(**row) for row in json.loads(path.read_text())]


DEMO_REPORTS = [  # (category, description, answers, RW index, days ago, how far it got)
    ("sampah", "Sampah menumpuk di pinggir kali dekat jembatan, sudah tiga hari tidak diangkut.", {}, 0, 5, "selesai"),
    ("pju_mati", "Lampu jalan di depan musala mati, jalan gelap sekali malam hari.", {"nomor_tiang": "PJU-117"}, 1, 3,
     "proses"),
    ("cctv", "Kamera CCTV di taman tidak menyala sejak kemarin sore.", {}, 0, 2, "koordinasi"),
    ("banjir", "Air setinggi betis menggenangi gang setelah hujan deras sore ini.", {"tinggi_air_cm": 35}, 1, 1,
     "menunggu"),
    ("parkir_liar", "Mobil parkir di trotoar depan pasar menutup jalan pejalan kaki.", {}, 3, 0, "menunggu"),
    ("pohon_tumbang", "Dahan pohon besar patah dan menimpa kabel listrik di ujung jalan.", {"menutup_jalan": "ya"}, 2,
     0, "menunggu"),
]


def create_report_desk(db_session: Session, settings: Settings) -> tuple[str, str]:
    """Units, routing and officers for the home kelurahan, an intake client for the city app, and a
    few reports at different steps of the workflow. Returns the client's key and webhook secret."""
    from siskamling.reports import catalogue, channels
    from siskamling.reports import service as reports
    from siskamling.reports.models import Status

    kel = _home_kelurahan(db_session)
    city = db_session.scalar(select(Area).where(Area.parent_id.is_(None)).order_by(Area.code))
    office = catalogue.save_unit(db_session=db_session, code="kel-" + kel.code, name="Kantor Kelurahan " + kel.name,
                                 kind="kelurahan", area_path=kel.path, actor=ACTOR)
    sda = catalogue.save_unit(db_session=db_session, code="dinas-sda", name="Dinas Sumber Daya Air", kind="dinas",
                              area_path=None, actor=ACTOR)
    satpol = catalogue.save_unit(db_session=db_session, code="satpol-pp", name="Satpol PP", kind="satpol",
                                 area_path=None, actor=ACTOR)
    bina = catalogue.save_unit(db_session=db_session, code="bina-marga", name="Dinas Bina Marga", kind="dinas",
                               area_path=None, actor=ACTOR)
    catalogue.set_rule(db_session=db_session, category_row=None, area_path=kel.path, unit_row=office, actor=ACTOR)
    for code, unit in (("banjir", sda), ("parkir_liar", satpol), ("ketertiban", satpol), ("jalan_rusak", bina)):
        catalogue.set_rule(db_session=db_session, category_row=catalogue.category(db_session=db_session, code=code),
                           area_path=city.path, unit_row=unit, actor=ACTOR)
    officer = accounts.get_user(db_session=db_session, username="officer")
    catalogue.add_member(db_session=db_session, unit_row=office, user_id=officer.id, is_head=True, actor=ACTOR)
    _client, key, secret = channels.create_client(db_session=db_session, settings=settings, name="JAKI (demo)",
                                                  webhook_url=None, actor=ACTOR)
    staff = reports.staff_of(db_session, accounts.principal_for(db_session=db_session, user=officer))
    acting = Actor(officer.id, officer.username)
    rws = _children(db_session, kel) or [kel]
    now = utcnow()
    for category, text, answers, rw_index, days, reached in DEMO_REPORTS:
        area = rws[rw_index % len(rws)]
        when = now - timedelta(days=days, hours=2)
        filed = reports.file_report(db_session=db_session, settings=settings, actor=ACTOR, now=when, data=reports.NewReport(
            category=category, description=text, attributes=answers, lat=area.centroid_lat, lon=area.centroid_lon,
            anonymous=True, occurred_at=when))
        report = filed.report
        if report.unit_id != office.id:
            continue  # another unit's: it waits there
        path = {"koordinasi": [Status.koordinasi], "proses": [Status.koordinasi, "assign", Status.proses],
                "selesai": [Status.koordinasi, "assign", Status.proses, Status.selesai]}.get(reached, [])
        for n, step in enumerate(path, 1):
            at = when + timedelta(hours=3 * n)
            if step == "assign":
                reports.assign(db_session=db_session, staff=staff, report=report, officer_id=officer.id, actor=acting,
                               now=at)
            else:
                note = "Sudah dibersihkan petugas PPSU." if step == Status.selesai else None
                reports.change_status(db_session=db_session, staff=staff, report=report, to=step, note=note,
                                      actor=acting, now=at)
    return key, secret or ""


DEMO_REQUESTS = [  # (username, reason, where: "rt" = the ketua RT's own RT or an RW index, metres north, text, hours)
    ("ketua.rw", "gang_gelap", 0, 40, "Gang belakang masjid gelap, dua motor hilang bulan ini.", [(18, 24), (0, 5)]),
    ("ketua.rt", "rawan_kriminalitas", "rt", 0, "Pertigaan dekat pos ronda sering ada jambret.", [(19, 24)]),
    ("fkdm", "rawan_banjir", 1, 0, "Saluran sering meluap; perlu memantau ketinggian air.", []),
    ("operator", "sekolah", 2, 60, "Depan SD negeri, ramai saat jam masuk dan pulang.", [(6, 8), (12, 14)]),
]


def create_camera_requests(db_session: Session, settings: Settings) -> None:
    """A few camera requests from the demo's neighbourhood leaders (one backed by the demo
    resident, one under review), a year of simulated fire-brigade incidents, and each kelurahan's
    population: so the request pages, the score and the planner have something to work on."""
    import random

    from siskamling.placement import service as requests_
    from siskamling.placement.models import Incident, RequestStatus

    rng = random.Random(7)
    now = utcnow()
    for i, kel in enumerate(db_session.scalars(select(Area).where(Area.level == Level.kelurahan).order_by(Area.code))):
        kel.attributes = {**(kel.attributes or {}), "population": 18_000 + (i * 7919) % 30_000}
    rw_all = list(db_session.scalars(select(Area).where(Area.level == Level.rw, Area.centroid_lat.is_not(None))))
    for n in range(120):  # incidents: most near a few hot RWs
        rw = rw_all[(n * 7) % 5] if n % 3 else rng.choice(rw_all)
        db_session.add(Incident(
            source="damkar-demo", source_ref=str(n + 1), kind=rng.choice(["kebakaran", "kebakaran", "penyelamatan"]),
            occurred_at=now - timedelta(days=rng.uniform(1, 360)), lat=rw.centroid_lat + rng.gauss(0, 0.0008),
            lon=rw.centroid_lon + rng.gauss(0, 0.0008), area_path=rw.path, placed_by="point"))
    kel = _home_kelurahan(db_session)
    rws = _children(db_session, kel) or [kel]
    filed = []
    rts = [a for a in _children(db_session, rws[0]) if a.centroid_lat is not None] or [rws[0]]
    for username, reason, where, north, text, hours in DEMO_REQUESTS:
        user = accounts.get_user(db_session=db_session, username=username)
        principal = accounts.principal_for(db_session=db_session, user=user)
        area = rts[0] if where == "rt" else rws[where % len(rws)]
        filed.append(requests_.file_request(
            db_session=db_session, settings=settings, principal=principal, actor=Actor(user.id, username),
            data=requests_.NewRequest(lat=area.centroid_lat + north / 111_195, lon=area.centroid_lon, reason=reason,
                                      description=text, hours=hours)))
    resident = accounts.get_user(db_session=db_session, username="warga")
    requests_.support(db_session=db_session, settings=settings, req=filed[0], actor=Actor(resident.id, "warga"),
                      principal=accounts.principal_for(db_session=db_session, user=resident))
    operator = accounts.get_user(db_session=db_session, username="operator")
    requests_.change_status(db_session=db_session, settings=settings, req=filed[2], to=RequestStatus.ditinjau,
                            reason="Survei lapangan dijadwalkan pekan depan.", actor=Actor(operator.id, "operator"),
                            principal=accounts.principal_for(db_session=db_session, user=operator))
