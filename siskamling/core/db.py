"""Database engine, ORM base and session factory.

SQLite is the embedded default (WAL, busy timeout, BEGIN IMMEDIATE so that writers queue
instead of failing on lock upgrade); PostgreSQL is the scale-out database.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event, text
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


def make_engine(url: str, **kwargs) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, **kwargs)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)
    _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
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
    # several times); other processes (camera workers) still wait in SQLite's busy handler.
    write_lock = threading.Lock()

    def release(info) -> None:
        if info.pop(WRITE_LOCK_HELD, False):
            write_lock.release()

    @event.listens_for(engine, "begin")
    def on_begin(connection):
        # Read-only probes (readiness, schema version) opt out of the write lock.
        if connection.get_execution_options().get(READ_ONLY, False):
            connection.exec_driver_sql("BEGIN")
            return
        if not write_lock.acquire(timeout=WRITE_LOCK_TIMEOUT_S):
            raise TimeoutError("the database stayed busy for %s s" % WRITE_LOCK_TIMEOUT_S)
        connection.info[WRITE_LOCK_HELD] = True
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            release(connection.info)
            raise

    for name in ("commit", "rollback"):
        event.listen(engine, name, lambda connection: release(connection.info))

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


def database_now(session: Session) -> datetime:
    """The database server's clock (UTC): one clock for every node, for leases and claims that
    must not depend on each machine's time being right."""
    if session.get_bind().dialect.name == "sqlite":
        value = session.scalar(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')"))
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return session.scalar(text("SELECT clock_timestamp()")).astimezone(UTC)
