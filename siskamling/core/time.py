"""Time is stored in UTC and shown in Asia/Jakarta (WIB)."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

WIB = ZoneInfo("Asia/Jakarta")


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_wib(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(WIB)


def format_wib(value: datetime | None) -> str:
    local = to_wib(value)
    return local.strftime("%Y-%m-%d %H:%M WIB") if local else ""
