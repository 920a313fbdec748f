"""Database engine, ORM base and session factory.

SQLite is the embedded default (WAL, busy timeout, BEGIN IMMEDIATE so that writers queue
instead of failing on lock upgrade); PostgreSQL is the scale-out database.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Connection, DateTime, Engine, MetaData, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; Siskamling stores aware UTC datetimes only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


READ_ONLY = "siskamling_read_only"
WRITE_LOCK_HELD = "siskamling_write_lock_held"
WRITE_LOCK_TIMEOUT_S = 30


def read_only(engine: Engine):
    """A connection for reads that must not queue behind writers (SQLite: deferred BEGIN)."""
    return engine.connect().execution_options(**{READ_ONLY: True})


_read_engines: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()
_read_engines_lock = threading.Lock()


def _read_engine(engine: Engine) -> Engine:
    """A second engine on the same SQLite file, with its own pool of query-only connections: a
    request holding a reader connection and then taking a writer one never waits on its own pool
    (with one pool, 16 requests holding their readers would wait forever for a writer)."""
    with _read_engines_lock:
        reader = _read_engines.get(engine)
        if reader is None:
            reader = create_engine(engine.url, connect_args={"check_same_thread": False, "timeout": 30},
                                   pool_size=8, max_overflow=32)

            @event.listens_for(reader, "connect")
            def on_connect(dbapi_connection, _record):
                dbapi_connection.isolation_level = None  # each read its own snapshot; no write lock ever
                dbapi_connection.execute("PRAGMA query_only=ON")
                dbapi_connection.execute("PRAGMA busy_timeout=30000")

            _read_engines[engine] = reader
        return reader


@contextmanager
def reader_session(engine: Engine, writer: Session) -> Iterator[Session]:
    """A session for the reads a write depends on, done outside the write transaction. On SQLite
    the write lock (BEGIN IMMEDIATE, one for every process) is then held only for the writes
    themselves, so other requests and processes do not wait while this one checks and computes.
    What it read may change before the write commits: use it for what constraints or the write
    itself still guard (a category, a routing rule, a client's key). It is ``writer`` itself on
    PostgreSQL, where writers do not exclude each other, and wherever reading elsewhere would miss
    what the writer's transaction already holds: a writer that has begun, or one bound to a
    connection whose transaction it joins."""
    if engine.dialect.name != "sqlite" or writer.in_transaction() or isinstance(writer.get_bind(), Connection):
        yield writer
        return
    with Session(bind=_read_engine(engine), autoflush=False) as session:
        yield session


def make_engine(url: str, **kwargs) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, **kwargs)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)
    _configure_sqlite(engine, parsed.database if parsed.database and parsed.database != ":memory:" else None)
    return engine


class _FileLock:
    """An exclusive lock on ``<database>.writelock`` (``flock``), taken by a process's writer
    before ``BEGIN IMMEDIATE``: with several processes on one SQLite file (one web process per
    core, camera workers), a waiting writer sleeps in the kernel and is woken when the lock is
    released, instead of in SQLite's busy handler, which polls with growing sleeps (up to 100 ms)
    and so lets the process that just committed take the lock again and again. Released by the
    kernel if the process dies."""

    def __init__(self, path: str) -> None:
        self.path = path + ".writelock"
        self.fd: int | None = None
        self.pid = 0

    def acquire(self) -> None:
        import fcntl
        import os

        if self.fd is None or self.pid != os.getpid():  # a forked child opens its own
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self.pid = os.getpid()
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def release(self) -> None:
        import fcntl

        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)


def _configure_sqlite(engine: Engine, path: str | None = None) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        # FULL: a committed transaction survives a power cut too, not only a crash of the process.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    # Writers of this process queue on a lock of our own before BEGIN IMMEDIATE. Without it they
    # queue inside SQLite, whose busy handler sleeps (1, 2, 5 … 100 ms) between tries: when the
    # lock is freed, the next writer may be asleep, and the database sits idle. With it, the lock
    # passes at once to the next thread (intake throughput and its tail latency both improved
    # several times). Between processes, the same job is done by a file lock (``_FileLock``).
    # Both are released after COMMIT or ROLLBACK has run (the engine's "commit" event fires before
    # it, which would let the next writer start its BEGIN IMMEDIATE into a still-locked database).
    write_lock = threading.Lock()
    file_lock = _FileLock(path) if path else None
    holding: dict[int, dict] = {}  # id of a DBAPI connection in a write transaction -> its pool record's info

    def release(info) -> None:
        if info.pop(WRITE_LOCK_HELD, False):
            holding.pop(info.pop("siskamling_dbapi_id", None), None)
            if file_lock is not None:
                file_lock.release()
            write_lock.release()

    @event.listens_for(engine, "begin")
    def on_begin(connection):
        # Read-only probes (readiness, schema version) opt out of the write lock.
        if connection.get_execution_options().get(READ_ONLY, False):
            connection.exec_driver_sql("BEGIN")
            return
        if not write_lock.acquire(timeout=WRITE_LOCK_TIMEOUT_S):
            raise TimeoutError("the database stayed busy for %s s" % WRITE_LOCK_TIMEOUT_S)
        try:
            if file_lock is not None:
                file_lock.acquire()
        except BaseException:
            write_lock.release()
            raise
        info = connection.info
        info[WRITE_LOCK_HELD] = True
        dbapi_id = id(connection.connection.dbapi_connection)
        info["siskamling_dbapi_id"] = dbapi_id
        holding[dbapi_id] = info
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            release(info)
            raise

    dialect = engine.dialect
    for name in ("do_commit", "do_rollback"):
        def ended(dbapi_connection, _original=getattr(dialect, name)):
            try:
                _original(dbapi_connection)
            finally:
                # SQLAlchemy passes the pool's proxy here; the lock was noted for the connection inside.
                info = holding.get(id(getattr(dbapi_connection, "dbapi_connection", dbapi_connection)))
                if info is not None:
                    release(info)

        setattr(dialect, name, ended)

    @event.listens_for(engine, "checkin")
    def on_checkin(_dbapi_connection, record):
        release(record.info)  # a connection returned without commit or rollback (an error path)

    @event.listens_for(engine, "close")
    def on_close(_dbapi_connection, record):
        release(record.info)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit once at the end, roll back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def read_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """``session_scope`` for a read that writes nothing (a poll, a look-up): on SQLite it begins
    without the write lock that every writer queues for."""
    with session_scope(factory) as session:
        session.connection(execution_options={READ_ONLY: True})
        yield session


def database_now(session: Session) -> datetime:
    """The database server's clock (UTC): one clock for every node, for leases and claims that
    must not depend on each machine's time being right."""
    if session.get_bind().dialect.name == "sqlite":
        # SQLite's clock counts milliseconds; rows are stamped to the microsecond (outbox rows get
        # Python's utcnow on insert). The end of the current millisecond is still "now" on this
        # clock, and taking it keeps a row queued earlier in the same millisecond from looking as
        # if it were due in the future (a notification just queued, not sent by the next claim).
        value = session.scalar(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')"))
        return datetime.fromisoformat(value).replace(tzinfo=UTC) + timedelta(microseconds=999)
    return session.scalar(text("SELECT clock_timestamp()")).astimezone(UTC)
