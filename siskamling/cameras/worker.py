"""Camera workers: a supervisor process claims cameras through leases in the database and runs
one recorder process per camera; ``siskamling serve`` starts one, ``siskamling worker`` runs one on
another machine. A camera whose worker dies stops being renewed and is claimed by another worker
when its lease runs out."""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import signal
import socket
import time
import uuid
from dataclasses import dataclass

from siskamling.cameras import service as cameras
from siskamling.cameras.models import Health
from siskamling.cameras.recorder import Callbacks, CameraRecorder, HealthReport, RecorderConfig
from siskamling.core.config import Settings
from siskamling.core.db import make_engine, make_session_factory, session_scope
from siskamling.events import service as events

log = logging.getLogger(__name__)
SPAWN = multiprocessing.get_context("spawn")
LOG_FORMAT = "%(asctime)s %(processName)s %(levelname)s %(message)s"


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


# --- one camera, in its own process ------------------------------------------------------------


def recorder_main(settings_json: str, camera_id: int, code: str) -> None:
    """Entry point of a recorder process: its own database engine, stopped by SIGTERM."""
    import siskamling.models  # noqa: F401  (mappers)

    # A spawned process starts without the worker's logging set-up: without this, the recorder's
    # own lines (a camera going online or offline, and why) were dropped.
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    settings = Settings.model_validate_json(settings_json)
    stopping = {"flag": False}
    signal.signal(signal.SIGTERM, lambda *_: stopping.__setitem__("flag", True))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides when recorders stop
    gc.freeze()  # the modules and mappers loaded so far live as long as the process: never scan them
    factory = make_session_factory(make_engine(settings.database_url))
    with session_scope(factory) as db:
        source = cameras.source_for(db_session=db, camera_id=camera_id, settings=settings)
    if source is None:
        return
    url, substream_url, credentials = source
    recorder = CameraRecorder(
        code=code, url=url, credentials=credentials, substream_url=substream_url,
        config=RecorderConfig(media_dir=settings.media_dir, segment_seconds=settings.segment_seconds,
                              analytics_fps=settings.analytics_fps, engine=settings.recording_engine,
                              ffmpeg=settings.ffmpeg_path),
        callbacks=DatabaseCallbacks(factory, camera_id, settings, lambda: stopping["flag"]).callbacks(),
    )
    recorder.run()


HEALTH_WRITE_S = 30.0  # an unchanged state's readings reach the database this often


@dataclass
class DatabaseCallbacks:
    """A recorder's reports into the database. A change of state or of its reason, and the
    first frame rate after it, are written at once; readings of an unchanged state (fps, bitrate,
    last frame) every ``HEALTH_WRITE_S``, riding along with a segment's index entry when one
    comes (one transaction instead of two). Segments and readings, the writes of every few
    seconds, go through a bare connection (``engine.begin``): a session's unit of work would
    cost the recorder several times as much CPU (docs/benchmarks.md)."""

    factory: object
    camera_id: int
    settings: Settings
    should_stop: object
    state: tuple | None = None  # (health, message, has a frame rate) last written
    written_at: float = 0.0
    waiting: HealthReport | None = None

    def __post_init__(self) -> None:
        self.engine = self.factory.kw["bind"]

    def callbacks(self) -> Callbacks:
        return Callbacks(on_segment=self.segment, on_health=self.health, should_stop=self.should_stop,
                         on_motion_start=self.motion_start, on_motion_end=self.motion_end)

    def motion_start(self, at) -> int:
        with session_scope(self.factory) as db:
            return cameras.start_motion(db_session=db, camera_id=self.camera_id, started_at=at)

    def motion_end(self, event_id: int, at, score: float) -> None:
        with session_scope(self.factory) as db:
            cameras.end_motion(db_session=db, event_id=event_id, ended_at=at, score=score)

    def segment(self, started_at, ended_at, path, size) -> None:
        relative = str(path.relative_to(self.settings.media_dir))
        ride = self.waiting is not None and time.monotonic() - self.written_at >= HEALTH_WRITE_S / 2
        with self.engine.begin() as conn:
            cameras.add_segment(db_session=conn, camera_id=self.camera_id, started_at=started_at,
                                ended_at=ended_at, path=relative, size=size)
            if ride and self._key(self.waiting) == self.state and self._readings(conn, self.waiting):
                self.waiting, self.written_at = None, time.monotonic()
        if ride and self.waiting is not None:
            self._write_health()  # the camera's state changed meanwhile (elsewhere): the full way

    def health(self, report: HealthReport) -> None:
        self.waiting = report
        if self._key(report) != self.state or time.monotonic() - self.written_at >= HEALTH_WRITE_S:
            self._write_health()

    @staticmethod
    def _key(report: HealthReport) -> tuple:
        """What makes a report news: another state or reason, or the first frame rate."""
        return report.health, report.message, report.fps is not None

    def _readings(self, db, report: HealthReport) -> bool:
        return cameras.update_readings(db=db, camera_id=self.camera_id, health=report.health,
                                       message=report.message, fps=report.fps, bitrate_kbps=report.bitrate_kbps,
                                       last_frame_at=report.last_frame_at, codec=report.codec,
                                       width=report.width, height=report.height)

    def _write_health(self) -> None:
        report, self.waiting = self.waiting, None
        if report is None:
            return
        changed = False
        if self._key(report) == self.state:  # nearly always: the readings of a state already written
            with self.engine.begin() as conn:
                written = self._readings(conn, report)
        else:
            written = False
        if not written:
            with session_scope(self.factory) as db:
                changed = cameras.set_health(db_session=db, camera_id=self.camera_id, health=report.health,
                                             message=report.message, fps=report.fps,
                                             bitrate_kbps=report.bitrate_kbps, last_frame_at=report.last_frame_at,
                                             codec=report.codec, width=report.width, height=report.height)
        self.state, self.written_at = self._key(report), time.monotonic()
        if changed:
            log.info("camera %s is %s%s", self.camera_id, report.health,
                     f": {report.message}" if report.message else "")


# --- the supervisor ----------------------------------------------------------------------------


class Supervisor:
    def __init__(self, settings: Settings, worker_id: str | None = None, renew_every_s: float | None = None) -> None:
        self.settings = settings
        self.worker_id = worker_id or new_worker_id()
        self.factory = make_session_factory(make_engine(settings.database_url))
        self.children: dict[int, multiprocessing.Process] = {}
        self.codes: dict[int, str] = {}
        self.renew_every_s = renew_every_s or max(settings.worker_lease_seconds / 4, 1.0)

    def step(self) -> None:
        """One round: renew leases, stop recorders whose camera was lost, restart dead ones,
        claim more cameras while there is room."""
        lease = self.settings.worker_lease_seconds
        with session_scope(self.factory) as db:
            held = cameras.renew_leases(db_session=db, worker_id=self.worker_id, camera_ids=list(self.children),
                                        lease_seconds=lease)
        for camera_id in [c for c in self.children if c not in held]:
            log.warning("lost camera %s (lease taken over or camera disabled)", camera_id)
            self._stop(camera_id)
        for camera_id, proc in list(self.children.items()):
            if not proc.is_alive():
                log.warning("recorder for camera %s exited (%s); restarting", camera_id, proc.exitcode)
                self._start(camera_id)
        while len(self.children) < self.settings.worker_capacity:
            with session_scope(self.factory) as db:
                camera_id = cameras.claim_one(db_session=db, worker_id=self.worker_id, lease_seconds=lease)
                code = cameras.code_of(db_session=db, camera_id=camera_id) if camera_id else None
            if camera_id is None:
                break
            self.codes[camera_id] = code
            self._start(camera_id)

    def cleanup(self) -> tuple[int, int]:
        """Retention and disk pressure for the cameras this worker holds (each camera's recordings
        live on its worker's disk)."""
        import shutil

        held = list(self.children)
        if not held:
            return 0, 0
        self.settings.media_dir.mkdir(parents=True, exist_ok=True)
        with session_scope(self.factory) as db:
            expired = cameras.expire_recordings(db_session=db, settings=self.settings, camera_ids=held)
        with session_scope(self.factory) as db:
            pressed = cameras.relieve_disk_pressure(
                db_session=db, settings=self.settings, camera_ids=held,
                free_bytes=lambda: shutil.disk_usage(self.settings.media_dir).free)
        with session_scope(self.factory) as db:
            events.prune(db_session=db)
        if expired or pressed:
            log.info("cleanup: %s segment(s) past retention, %s for free space", expired, pressed)
        return expired, pressed

    def _start(self, camera_id: int) -> None:
        proc = SPAWN.Process(target=recorder_main, name=f"siskamling-recorder-{self.codes[camera_id]}",
                             args=(self.settings.model_dump_json(), camera_id, self.codes[camera_id]), daemon=True)
        proc.start()
        self.children[camera_id] = proc

    def _stop(self, camera_id: int, timeout: float = 5.0) -> None:
        proc = self.children.pop(camera_id, None)
        self.codes.pop(camera_id, None)
        if proc is None:
            return
        proc.terminate()
        proc.join(timeout)
        if proc.is_alive():
            proc.kill()
            proc.join()

    def shutdown(self) -> None:
        """Stop every recorder (each finishes its segment) and hand the cameras back at once."""
        held = list(self.children)
        for camera_id in held:
            self._stop(camera_id)
        with session_scope(self.factory) as db:
            cameras.release(db_session=db, worker_id=self.worker_id, camera_ids=held)
            for camera_id in held:
                cameras.set_health(db_session=db, camera_id=camera_id, health=Health.unknown,
                                   message="worker stopped")

    def run(self, should_stop=lambda: False) -> None:
        log.info("camera worker %s started (capacity %s)", self.worker_id, self.settings.worker_capacity)
        next_cleanup = time.monotonic() + 30
        try:
            while not should_stop():
                self.step()
                if time.monotonic() >= next_cleanup:
                    self.cleanup()
                    next_cleanup = time.monotonic() + 60
                deadline = time.monotonic() + self.renew_every_s
                while time.monotonic() < deadline and not should_stop():
                    time.sleep(0.2)
        finally:
            self.shutdown()


def worker_main(settings_json: str, parent_pid: int | None = None) -> None:
    """Entry point of a worker process (started by ``serve``, or ``siskamling worker``). Started
    by a server, it stops when that server is gone, even if the server was killed outright."""
    import siskamling.models  # noqa: F401

    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    settings = Settings.model_validate_json(settings_json)
    stopping = {"flag": False}
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.__setitem__("flag", True))
    orphaned = (lambda: os.getppid() != parent_pid) if parent_pid else (lambda: False)
    Supervisor(settings).run(lambda: stopping["flag"] or orphaned())


def start_worker_process(settings: Settings) -> multiprocessing.Process:
    proc = SPAWN.Process(target=worker_main, args=(settings.model_dump_json(), os.getpid()),
                         name="siskamling-worker", daemon=False)
    proc.start()
    return proc
