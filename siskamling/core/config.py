"""Typed settings, read once from ``SISKAMLING_*`` environment variables and an optional TOML file."""

from __future__ import annotations

import tomllib
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

INSECURE_SECRET = "change-me-insecure-development-key-0000000000"


DEFAULT_CATEGORY_WEIGHTS = {
    "kriminalitas": 3.0, "ketertiban": 2.0, "kebakaran": 2.0, "banjir": 1.5, "pju_mati": 1.5, "cctv": 1.0,
    "parkir_liar": 0.5, "pohon_tumbang": 0.5, "jalan_rusak": 0.3, "sampah": 0.2,
    "penyelamatan": 1.0, "gawat_darurat": 0.5,  # incident kinds (fire brigade log)
}
DEFAULT_SCORE_WEIGHTS = {"gap": 30.0, "need": 30.0, "flood": 15.0, "population": 10.0, "support": 15.0}


class Environment(StrEnum):
    production = "production"
    development = "development"
    demo = "demo"
    test = "test"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SISKAMLING_", extra="forbid")

    environment: Environment = Field(
        Environment.production,
        description="production refuses insecure values; demo/development/test relax them",
    )
    database_url: str = Field(
        "sqlite:///var/siskamling.db",
        description="SQLAlchemy URL: sqlite:///path (embedded default) or postgresql+psycopg://…",
    )
    media_dir: Path = Field(Path("var/media"), description="folder for recordings, snapshots and uploads")
    secret_key: str = Field(
        INSECURE_SECRET,
        description="key for signing cookies, CSRF tokens and encrypting secrets at rest; ≥ 32 characters",
    )
    host: str = Field("127.0.0.1", description="address `siskamling serve` binds to")
    port: int = Field(8000, ge=1, le=65535, description="port `siskamling serve` binds to")
    trusted_proxies: str = Field(
        "127.0.0.1",
        description="comma-separated addresses of reverse proxies whose X-Forwarded-For/-Proto are believed "
        "(the client address goes into the audit log); empty to trust none",
    )
    migrate_on_start: bool = Field(
        True, description="run pending database migrations when the server starts; if false, refuse to start"
    )
    session_cookie_secure: bool = Field(
        True, description="send the session cookie only over HTTPS (must be true in production)"
    )
    session_hours: float = Field(12, gt=0, description="a login session ends after this many idle hours")
    login_max_failures: int = Field(5, ge=1, description="failed logins before an account is locked")
    login_lockout_minutes: float = Field(15, gt=0, description="how long a locked account stays locked")
    totp_issuer: str = Field("Siskamling", description="issuer name shown in authenticator apps")
    default_language: str = Field("id", pattern="^(id|en)$", description="UI language before a user picks one")
    tile_url: str = Field(
        "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        description="Leaflet base map tile URL; empty for no base map (offline sites)",
    )
    tile_attribution: str = Field(
        "&copy; OpenStreetMap contributors", description="attribution shown for the base map tiles"
    )
    boundary_attribution: str = Field(
        "", description="credit for the imported boundary data, shown on every map (licences such as ODbL require it)"
    )
    locate_edge_tolerance_m: float = Field(
        300, ge=0, description="points this close outside the outermost areas resolve to the nearest area"
    )
    run_workers: bool = Field(
        True, description="`siskamling serve` also runs a camera worker (set false when workers run on other machines)"
    )
    worker_capacity: int = Field(16, ge=1, le=1000, description="cameras one worker process records at most")
    worker_cameras_per_process: int = Field(
        8, ge=1, le=64, description="cameras one recorder process of a worker records, each in a thread of its own "
        "(1: a process per camera)"
    )
    worker_lease_seconds: float = Field(
        20, ge=3, le=300, description="a camera whose worker stops renewing for this long moves to another worker"
    )
    media_free_floor_gb: float = Field(
        5, ge=0, description="recordings are deleted oldest first (never held ones) to keep this much disk free"
    )
    segment_seconds: float = Field(10, ge=1, le=600, description="length of one recording segment")
    recording_engine: Literal["ffmpeg", "pyav"] = Field(
        "ffmpeg", description="`ffmpeg`: FFmpeg's segmenter records each camera, with a second camera connection "
        "only while someone watches; `pyav`: the recorder process demuxes once for everything (one camera connection "
        "at all times, about twice the CPU)"
    )
    ffmpeg_path: str | None = Field(
        None, description="the ffmpeg program for recording (unset: `ffmpeg` on PATH, else the one the imageio-ffmpeg "
        "package installs)"
    )
    analytics_fps: float = Field(
        5, ge=0, le=30, description="decoded frames per second of each camera's sub-stream handed to analytics "
        "(motion detection); 0 turns decoding off"
    )
    jurisdiction_id: str = Field(
        "jakarta.go.id", description="Open311 jurisdiction_id this deployment answers to (requests naming another "
        "are refused)"
    )
    report_photo_max_mb: float = Field(8, gt=0, le=50, description="largest photo accepted with a report")
    report_duplicate_radius_m: float = Field(
        150, ge=0, description="open reports of the same category this close are offered as possible duplicates"
    )
    report_duplicate_days: float = Field(7, ge=0, description="…and filed within this many days")
    report_footage_radius_m: float = Field(
        300, ge=0, description="cameras this close to a new report get its footage held as evidence"
    )
    report_footage_minutes: float = Field(
        15, ge=0, description="footage is held from this many minutes before the report's time to as many after"
    )
    report_public_grid_m: float = Field(
        100, gt=0, description="the public map shows report positions snapped to a grid this coarse"
    )
    intake_threads: int | None = Field(
        None, ge=1, le=64, description="report intake (Open311, the city app's channel): reports one web process "
        "handles at once, the rest waiting their turn on the event loop; unset: 1 on SQLite (the thread holding the "
        "one write lock then has no other intake thread to compete with for the interpreter: the most reports a "
        "second), 8 on PostgreSQL (writers do not exclude each other)"
    )
    live_frames_per_message: int = Field(
        2, ge=1, le=4, description="live video: frames sent to a viewer in one WebSocket message (keyframes always "
        "alone); 2 halves the writes per viewer for one frame interval (67 ms at 15 fps) of delay, 1 sends each "
        "frame as it comes"
    )
    request_group_radius_m: float = Field(
        150, ge=0, description="camera requests this close to each other are shown together (one neighbourhood, one voice)"
    )
    placement_unit_cost: float = Field(
        35_000_000, gt=0, description="cost of one camera site in Rupiah, for plans made with a budget"
    )
    placement_site_costs: dict[str, float] = Field(
        default_factory=dict, description="cost per camera site type where it differs from the unit cost, as JSON, "
        'e.g. {"taman_24_jam": 45000000}'
    )
    placement_coverage_radius_m: float = Field(
        150, gt=0, le=2000, description="a camera site covers the demand (reports, incidents, flood-prone RWs) this close"
    )
    placement_category_weights: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_CATEGORY_WEIGHTS), description="weight of one report of each category "
        "(and of one incident of each kind) as demand, as JSON; unlisted ones weigh 1"
    )
    placement_flood_weight: float = Field(
        5, ge=0, description="demand weight of one flood-prone RW (the RW layer's floodprone attribute)"
    )
    placement_time_limit_seconds: float = Field(60, gt=0, le=3600, description="the planner's time limit")
    placement_solver_max_nonzeros: int = Field(
        200_000, ge=0, description="the exact solver (MIP) is used up to this many (site, demand) coverage pairs; "
        "larger plans use the greedy and the Lagrangian bound"
    )
    score_radius_m: float = Field(
        300, gt=0, description="a camera request's score counts reports and incidents this close, over the last 12 months"
    )
    score_weights: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_SCORE_WEIGHTS), description="weights of a camera request's score parts, "
        "as JSON: gap (distance to the nearest camera), need (reports and incidents), flood, population, support"
    )
    score_gap_full_m: float = Field(1000, gt=0, description="a request this far or farther from every camera scores "
                                    "the full coverage-gap part")
    score_need_full: float = Field(20, gt=0, description="weighted reports and incidents that score the full need part")
    score_support_full: int = Field(25, gt=0, description="supporters that score the full support part")
    run_scheduler: bool = Field(
        True, description="`siskamling serve` runs the periodic jobs (webhook deliveries, the deadline sweep, email, camera "
        "request scores); safe on every node"
    )
    webhook_timeout_seconds: float = Field(10, gt=0, description="how long a webhook receiver may take to answer")
    webhook_max_attempts: int = Field(
        12, ge=1, description="deliveries are retried with exponential backoff (30 s doubling, ≤ 6 h) this many times"
    )
    public_url: str = Field(
        "", description="the address people reach Siskamling at (e.g. https://siskamling.jakarta.go.id), for the "
        "links in email; empty: the links are paths only"
    )
    smtp_host: str = Field(
        "", description="mail server for deadline reminders and escalations by email; empty: no email (alerts "
        "on the dashboards only)"
    )
    smtp_port: int = Field(587, ge=1, le=65535, description="mail server port")
    smtp_starttls: bool = Field(True, description="upgrade the mail connection with STARTTLS before logging in")
    smtp_username: str = Field("", description="mail server login; empty: send without logging in")
    smtp_password: str = Field("", description="mail server password (keep it in the environment, not a file)")
    smtp_from: str = Field("Siskamling <siskamling@localhost>", description="the From address of Siskamling's mail")
    demo_accounts_file: Path | None = Field(
        None, description="where `siskamling demo` keeps the generated demo passwords"
    )

    @field_validator("score_weights")
    @classmethod
    def known_score_parts(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = set(value) - set(DEFAULT_SCORE_WEIGHTS)
        if unknown:
            raise ValueError(f"unknown score parts {sorted(unknown)}; known: {sorted(DEFAULT_SCORE_WEIGHTS)}")
        if any(v < 0 for v in value.values()) or not any(v > 0 for v in value.values()):
            raise ValueError("score weights must be ≥ 0 and not all 0")
        return {**{k: 0.0 for k in DEFAULT_SCORE_WEIGHTS}, **value}

    @field_validator("placement_site_costs", "placement_category_weights")
    @classmethod
    def non_negative(cls, value: dict[str, float]) -> dict[str, float]:
        if any(v < 0 for v in value.values()):
            raise ValueError("costs and weights must be ≥ 0")
        return value

    @model_validator(mode="after")
    def refuse_insecure_production(self) -> Settings:
        if self.environment != Environment.production:
            return self
        problems = []
        if self.secret_key == INSECURE_SECRET or len(self.secret_key) < 32:
            problems.append("SISKAMLING_SECRET_KEY must be set to a random value of at least 32 characters")
        if not self.session_cookie_secure:
            problems.append("SISKAMLING_SESSION_COOKIE_SECURE must be true in production (serve over HTTPS)")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Explicit arguments win, then the environment, then the config file.
        return init_settings, env_settings, TomlFileSource(settings_cls)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


class TomlFileSource(PydanticBaseSettingsSource):
    """Reads the file named by ``SISKAMLING_CONFIG`` (TOML, keys as the field names)."""

    def __call__(self) -> dict[str, Any]:
        import os

        path = os.environ.get("SISKAMLING_CONFIG")
        if not path:
            return {}
        try:
            with open(path, "rb") as fh:
                return tomllib.load(fh)
        except FileNotFoundError as exc:
            raise ValueError(f"config file {path} (SISKAMLING_CONFIG) does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"config file {path} is not valid TOML: {exc}") from exc

    def get_field_value(self, field, field_name):  # required by the base class; __call__ does the work
        return None, field_name, False


@lru_cache
def get_settings() -> Settings:
    return Settings()
