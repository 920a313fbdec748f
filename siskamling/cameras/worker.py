"""Camera workers: a supervisor process claims cameras through leases in the database and records
them in recorder processes of its own, each recording up to ``worker_cameras_per_process``
cameras in a thread per camera (their packets never enter Python with the default engine, so a
thread costs a camera far less than a process of its own: memory above all). ``siskamling serve``
starts one worker, ``siskamling worker`` runs one on another machine. A camera whose worker dies
stops being renewed and is claimed by another worker when its lease runs out; a recorder process
whose worker dies stops recording (its command pipe closes), and a recorder process that dies is
restarted by its worker with its cameras."""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field

from sqlalchemy.exc import OperationalError
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from siskamling.cameras import service as cameras
from siskamling.cameras.models import Health
from siskamling.cameras.recorder import Callbacks, CameraRecorder, HealthReport, RecorderConfig
from siskamling.core.config import Settings
from siskamling.core.db import make_engine, make_session_factory, session_scope
from siskamling.events import service as events

log = logging.getLogger(__name__)
SPAWN = multiprocessing.get_context("spawn")
LOG_FORMAT = "%(asctime)s %(processName)s %(levelname)s %(message)s"
RECORDER_LOG_FORMAT = "%(asctime)s %(processName)s %(threadName)s %(levelname)s %(message)s"  # thread: camera-CODE


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


# --- a recorder process: several cameras, a thread each ------------------------------------------


class CameraThread(threading.Thread):
    """One camera's recorder, until its own stop or the process's."""

    def __init__(self, settings: Settings, factory, camera_id: int, code: str, process_stopping: threading.Event):
        super().__init__(name=f"camera-{code}", daemon=True)
        self.settings, self.factory, self.camera_id, self.code = settings, factory, camera_id, code
        self.stopped = threading.Event()
        self.process_stopping = process_stopping
        self.started_at = 0.0

    def start(self) -> None:
        self.started_at = time.monotonic()
        super().start()

    def should_stop(self) -> bool:
        return self.stopped.is_set() or self.process_stopping.is_set()

    def run(self) -> None:
        try:
            with session_scope(self.factory) as db:
                source = cameras.source_for(db_session=db, camera_id=self.camera_id, settings=self.settings)
            if source is None:
                return
            url, substream_url, credentials = source
            settings = self.settings
            CameraRecorder(
                code=self.code, url=url, credentials=credentials, substream_url=substream_url,
                config=RecorderConfig(media_dir=settings.media_dir, segment_seconds=settings.segment_seconds,
                                      analytics_fps=settings.analytics_fps, engine=settings.recording_engine,
                                      ffmpeg=settings.ffmpeg_path),
                callbacks=DatabaseCallbacks(self.factory, self.camera_id, settings, self.should_stop).callbacks(),
            ).run()
        except Exception:
            log.exception("camera %s: the recorder failed; it starts again", self.code)


RESTART_AFTER_S = 5.0  # a camera's recorder that ended on its own starts again, at most this often
STOP_WAIT_S = 15.0  # a camera stopping closes its segment (FFmpeg is given 10 s)


def recorder_main(settings_json: str, commands) -> None:
    """Entry point of a recorder process: records the cameras its worker hands it over
    ``commands`` (``("start", id, code)``, ``("stop", id, None)``, answered by ``("stopped", id)``)
    until SIGTERM, or until the worker is gone (the pipe closes)."""
    import siskamling.models  # noqa: F401  (mappers)

    # A spawned process starts without the worker's logging set-up: without this, the recorder's
    # own lines (a camera going online or offline, and why) were dropped.
    logging.basicConfig(level=logging.INFO, format=RECORDER_LOG_FORMAT)
    settings = Settings.model_validate_json(settings_json)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides when recorders stop
    gc.freeze()  # the modules and mappers loaded so far live as long as the process: never scan them
    factory = make_session_factory(make_engine(settings.database_url))
    recording: dict[int, CameraThread] = {}
    ending: dict[int, CameraThread] = {}  # told to stop, closing their segment
    try:
        while not stopping.is_set():
            try:
                message = commands.recv() if commands.poll(0.2 if ending else 1.0) else None
            except (EOFError, OSError):
                log.warning("the worker is gone: recorder process stops")
                break
            stopped: list[int] = []  # to answer
            if message is not None:
                command, camera_id, code = message
                if command == "start":
                    recording.setdefault(camera_id, CameraThread(settings, factory, camera_id, code, stopping))
                elif command == "stop":
                    thread = recording.pop(camera_id, None)
                    if thread is not None and thread.ident is not None:
                        thread.stopped.set()  # it finishes and indexes the segment it was writing
                        ending[camera_id] = thread
                    elif camera_id not in ending:
                        stopped.append(camera_id)  # not recording here
            for camera_id, thread in list(ending.items()):
                if not thread.is_alive():
                    del ending[camera_id]
                    stopped.append(camera_id)
            try:
                for camera_id in stopped:
                    commands.send(("stopped", camera_id))
            except OSError:
                pass  # the worker is gone: the next poll says so
            for camera_id, thread in list(recording.items()):
                if camera_id in ending:
                    continue  # started again before its last recorder ended: it waits for it
                if thread.ident is None:
                    thread.start()
                elif not thread.is_alive() and time.monotonic() - thread.started_at >= RESTART_AFTER_S:
                    log.warning("camera %s: recorder ended; starting it again", thread.code)
                    thread = recording[camera_id] = CameraThread(settings, factory, camera_id, thread.code, stopping)
                    thread.start()
    finally:
        stopping.set()
        for thread in [*recording.values(), *ending.values()]:
            if thread.ident is not None:
                thread.join(STOP_WAIT_S)


HEALTH_WRITE_S = 30.0  # an unchanged state's readings reach the database this often
DB_RETRY_S = 300.0  # how long a segment's index entry is retried before its recorder gives up
TRANSIENT = (OperationalError, TimeoutError)  # a database busy (SQLite's write lock) or unreachable


def durably(write, what: str):
    """``write()``, retried (0.5 s doubling to 10 s between tries) while the database is busy or
    unreachable, for up to ``DB_RETRY_S``; then the error goes up."""
    for attempt in Retrying(retry=retry_if_exception_type(TRANSIENT), stop=stop_after_delay(DB_RETRY_S),
                            wait=wait_exponential(multiplier=0.5, max=10), reraise=True,
                            before_sleep=lambda state: log.warning("%s: database error (%s), trying again",
                                                                   what, state.outcome.exception().__class__.__name__)):
        with attempt:
            return write()


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
        """Index a finished segment. Its file is already in place, so the row must not be lost
        to a busy or briefly unreachable database: retried for up to ``DB_RETRY_S``."""
        relative = str(path.relative_to(self.settings.media_dir))
        ride = self.waiting is not None and time.monotonic() - self.written_at >= HEALTH_WRITE_S / 2

        def write() -> bool:
            with self.engine.begin() as conn:
                cameras.add_segment(db_session=conn, camera_id=self.camera_id, started_at=started_at,
                                    ended_at=ended_at, path=relative, size=size)
                return ride and self._key(self.waiting) == self.state and self._readings(conn, self.waiting)

        if durably(write, f"camera {self.camera_id}: segment {relative}"):
            self.waiting, self.written_at = None, time.monotonic()
        elif ride and self.waiting is not None:
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
        """Write the waiting report. If the database is busy or unreachable, the report waits for
        the next try (a newer report replaces it) and recording goes on."""
        report, self.waiting = self.waiting, None
        if report is None:
            return
        changed = False
        try:
            if self._key(report) == self.state:  # nearly always: the readings of a state already written
                with self.engine.begin() as conn:
                    written = self._readings(conn, report)
            else:
                written = False
            if not written:
                with session_scope(self.factory) as db:
                    changed = cameras.set_health(
                        db_session=db, camera_id=self.camera_id, health=report.health, message=report.message,
                        fps=report.fps, bitrate_kbps=report.bitrate_kbps, last_frame_at=report.last_frame_at,
                        codec=report.codec, width=report.width, height=report.height)
        except TRANSIENT as exc:
            log.warning("camera %s: health not written, tried again with the next report: %s", self.camera_id,
                        exc.__class__.__name__)
            self.waiting = self.waiting or report
            return
        self.state, self.written_at = self._key(report), time.monotonic()
        if changed:
            log.info("camera %s is %s%s", self.camera_id, report.health,
                     f": {report.message}" if report.message else "")


# --- the supervisor ----------------------------------------------------------------------------


@dataclass(eq=False)  # (each is itself: hashed by identity)
class RecorderProcess:
    """One of a worker's recorder processes, the pipe that gives it cameras, and those cameras."""

    proc: multiprocessing.Process
    conn: object  # multiprocessing.connection.Connection
    cameras: set[int] = field(default_factory=set)


class Supervisor:
    def __init__(self, settings: Settings, worker_id: str | None = None, renew_every_s: float | None = None) -> None:
        self.settings = settings
        self.worker_id = worker_id or new_worker_id()
        self.factory = make_session_factory(make_engine(settings.database_url))
        self.processes: list[RecorderProcess] = []
        self.where: dict[int, RecorderProcess] = {}  # camera id -> the process recording it
        self.codes: dict[int, str] = {}
        self.renew_every_s = renew_every_s or max(settings.worker_lease_seconds / 4, 1.0)
        self.renewed_at = 0.0
        self.spawned = 0

    @property
    def children(self) -> dict[int, multiprocessing.Process]:
        """Each camera this worker holds, and the process recording it."""
        return {camera_id: host.proc for camera_id, host in self.where.items()}

    def step(self) -> None:
        """One round: renew leases, stop recording cameras that were lost, restart recorder
        processes that died (with their cameras), claim more cameras while there is room."""
        lease = self.settings.worker_lease_seconds
        held = self._renew()
        lost = [c for c in self.where if c not in held]
        for camera_id in lost:
            log.warning("lost camera %s (lease taken over or camera disabled)", camera_id)
        self._stop(lost)
        for host in [h for h in self.processes if not h.proc.is_alive()]:
            log.warning("recorder process %s exited (%s); restarting its %s camera(s)", host.proc.name,
                        host.proc.exitcode, len(host.cameras))
            self._end(host)
            for camera_id in sorted(host.cameras):
                del self.where[camera_id]
                self._start(camera_id)
        while len(self.where) < self.settings.worker_capacity:
            with session_scope(self.factory) as db:
                camera_id = cameras.claim_one(db_session=db, worker_id=self.worker_id, lease_seconds=lease)
                code = cameras.code_of(db_session=db, camera_id=camera_id) if camera_id else None
            if camera_id is None:
                break
            self.codes[camera_id] = code
            self._start(camera_id)

    def _renew(self) -> set[int]:
        """Extend the leases of the cameras recorded here; returns those still held."""
        with session_scope(self.factory) as db:
            held = cameras.renew_leases(db_session=db, worker_id=self.worker_id, camera_ids=list(self.where),
                                        lease_seconds=self.settings.worker_lease_seconds)
        self.renewed_at = time.monotonic()
        return held

    def cleanup(self) -> tuple[int, int]:
        """Retention and disk pressure for the cameras this worker holds (each camera's recordings
        live on its worker's disk)."""
        import shutil

        held = list(self.where)
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
        per_process = self.settings.worker_cameras_per_process
        host = next((h for h in self.processes if len(h.cameras) < per_process and h.proc.is_alive()), None)
        if host is None:
            host = self._spawn()
        host.cameras.add(camera_id)
        self.where[camera_id] = host
        try:
            host.conn.send(("start", camera_id, self.codes[camera_id]))
        except OSError:
            pass  # it just died: the next step restarts it with its cameras

    def _spawn(self) -> RecorderProcess:
        self.spawned += 1
        ours, theirs = SPAWN.Pipe()
        proc = SPAWN.Process(target=recorder_main, name=f"siskamling-recorder-{self.spawned}",
                             args=(self.settings.model_dump_json(), theirs), daemon=True)
        proc.start()
        theirs.close()  # the recorder process holds the only other end: it reads EOF when we are gone
        host = RecorderProcess(proc, ours)
        self.processes.append(host)
        return host

    def _stop(self, camera_ids: list[int]) -> None:
        """Stop recording these cameras, all at once: each recorder finishes and indexes the
        segment it was writing. A recorder process left without cameras ends."""
        waiting: dict[RecorderProcess, set[int]] = {}
        for camera_id in camera_ids:
            host = self.where.pop(camera_id, None)
            self.codes.pop(camera_id, None)
            if host is None:
                continue
            host.cameras.discard(camera_id)
            waiting.setdefault(host, set())
            try:
                host.conn.send(("stop", camera_id, None))
                waiting[host].add(camera_id)
            except OSError:
                pass  # the process is gone, and the camera's recording with it
        deadline = time.monotonic() + STOP_WAIT_S + 5
        for host, stopping in waiting.items():
            try:
                while stopping and (left := deadline - time.monotonic()) > 0:
                    if host.conn.poll(min(left, 1.0)):
                        stopping.discard(host.conn.recv()[1])
                    elif time.monotonic() - self.renewed_at >= self.renew_every_s:
                        self._renew()  # the other cameras' leases must not run out meanwhile
            except (OSError, EOFError):
                stopping.clear()  # the process is gone, and those recordings with it
            if stopping:
                # A recorder that does not end (a hung read or write) cannot be stopped from the
                # outside: its process goes, and the next step starts its other cameras afresh.
                log.warning("camera(s) %s did not stop within %.0f s: recorder process %s is killed",
                            sorted(stopping), STOP_WAIT_S + 5, host.proc.name)
                host.proc.kill()
                host.proc.join(5)
            elif not host.cameras:
                self._end(host, timeout=5.0)

    def _end(self, host: RecorderProcess, timeout: float = STOP_WAIT_S + 5) -> None:
        if host in self.processes:
            self.processes.remove(host)
        host.proc.terminate()
        host.proc.join(timeout)
        if host.proc.is_alive():
            host.proc.kill()
            host.proc.join()
        host.conn.close()

    def shutdown(self) -> None:
        """Stop every recorder (each finishes its segment) and hand the cameras back at once."""
        held = list(self.where)
        for host in self.processes:
            host.proc.terminate()  # all at once: each camera closes its segment in parallel
        for host in list(self.processes):
            self._end(host)
        self.where.clear()
        self.codes.clear()
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
