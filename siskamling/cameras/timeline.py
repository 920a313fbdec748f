"""What a camera's recordings timeline shows for a time window [start, end): the recorded spans,
its health changes, the evidence holds and what its analytics saw (motion). Read only.

A week of 10 s segments is about 60,000 rows: the database reads them a day at a time and hands
back only the segments where a run of back-to-back segments starts or ends."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from siskamling.cameras.models import CameraEvent, CameraHealthEvent, EvidenceHold, RecordingSegment

MERGE_GAP = timedelta(seconds=30)  # segments closer than this are one span
CHUNK = timedelta(days=1)  # segments are read one day of the window at a time
EVENT_LIMIT = 5000  # per kind and window: a flapping camera must not make the answer unbounded


def _run_starts(db_session: Session, camera_id: int, since: datetime, until: datetime, start: datetime):
    """The segments starting in [since, until) (and ending after ``start``) that do not begin where
    the one before them ended, oldest first, each with the end of the one before (None for the
    first), and the latest end among all of them. A recorder starts each segment at the instant it
    ended the one before, so a day of 10 s segments is 8,640 rows for the database and usually one
    for Python."""
    seg = RecordingSegment
    where = (seg.camera_id == camera_id, seg.started_at >= since, seg.started_at < until, seg.ended_at > start)
    prev_end = func.lag(seg.ended_at, type_=seg.ended_at.type).over(order_by=(seg.started_at, seg.id))
    rows = select(seg.id, seg.started_at, seg.ended_at, prev_end.label("prev_end")).where(*where).subquery()
    starts = db_session.execute(
        select(rows.c.started_at, rows.c.ended_at, rows.c.prev_end)
        .where(or_(rows.c.prev_end.is_(None), rows.c.prev_end != rows.c.started_at))
        .order_by(rows.c.started_at, rows.c.id)
    ).all()
    last_end = db_session.scalar(select(func.max(seg.ended_at)).where(*where)) if starts else None
    return starts, last_end


def recorded_spans(*, db_session: Session, camera_id: int, start: datetime, end: datetime,
                   gap: timedelta = MERGE_GAP, chunk: timedelta = CHUNK) -> list[tuple[datetime, datetime]]:
    """Continuous recorded spans in the window, oldest first, clipped to it: segments less than
    ``gap`` apart are merged into one span."""
    # The segment running at the window's start began before it: found on the (camera_id,
    # started_at) index, so no query scans the camera's older history.
    since = db_session.scalar(
        select(RecordingSegment.started_at)
        .where(RecordingSegment.camera_id == camera_id, RecordingSegment.started_at < start)
        .order_by(RecordingSegment.started_at.desc()).limit(1)
    ) or start
    spans: list[list[datetime]] = []
    until = start
    while since < end:
        until = min(until + chunk, end)
        starts, last_end = _run_starts(db_session, camera_id, since, until, start)
        for started, ended, prev_end in starts:
            if prev_end is not None:  # where the run before this one ended
                spans[-1][1] = max(spans[-1][1], prev_end)
            if spans and started - spans[-1][1] < gap:
                spans[-1][1] = max(spans[-1][1], ended)
            else:
                spans.append([started, ended])
        if last_end is not None:
            spans[-1][1] = max(spans[-1][1], last_end)
        since = until
    return [(max(s, start), min(e, end)) for s, e in spans]


def newest_end(*, db_session: Session, camera_id: int) -> datetime | None:
    """When the newest segment ends (None before anything was recorded)."""
    return db_session.scalar(
        select(RecordingSegment.ended_at).where(RecordingSegment.camera_id == camera_id)
        .order_by(RecordingSegment.started_at.desc()).limit(1)
    )


def health_events(*, db_session: Session, camera_id: int, start: datetime, end: datetime,
                  limit: int = EVENT_LIMIT) -> list[CameraHealthEvent]:
    return list(db_session.scalars(
        select(CameraHealthEvent)
        .where(CameraHealthEvent.camera_id == camera_id, CameraHealthEvent.at >= start, CameraHealthEvent.at < end)
        .order_by(CameraHealthEvent.at).limit(limit)
    ))


def holds(*, db_session: Session, camera_id: int, start: datetime, end: datetime) -> list[EvidenceHold]:
    """Holds over footage in the window that were in force during it (not released before it)."""
    return list(db_session.scalars(
        select(EvidenceHold).where(
            EvidenceHold.camera_id == camera_id, EvidenceHold.starts_at < end, EvidenceHold.ends_at > start,
            or_(EvidenceHold.released_at.is_(None), EvidenceHold.released_at > start),
        ).order_by(EvidenceHold.starts_at)
    ))


def camera_events(*, db_session: Session, camera_id: int, start: datetime, end: datetime,
                  limit: int = EVENT_LIMIT) -> list[CameraEvent]:
    """Analytics events overlapping the window, ongoing ones (no end yet) included."""
    return list(db_session.scalars(
        select(CameraEvent).where(
            CameraEvent.camera_id == camera_id, CameraEvent.started_at < end,
            or_(CameraEvent.ended_at.is_(None), CameraEvent.ended_at > start),
        ).order_by(CameraEvent.started_at).limit(limit)
    ))
