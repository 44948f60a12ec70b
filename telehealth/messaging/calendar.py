"""The .ics invitation attached to emails (RFC 5545 through the icalendar library)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from icalendar import Calendar, Event

VISIT_LENGTH = timedelta(minutes=30)


def visit_invitation(*, uid: str, start: datetime, url: str, now: datetime | None = None) -> bytes:
    """A one-event calendar: when, and the link; no patient data."""
    cal = Calendar()
    cal.add("prodid", "-//Facial Capture Telehealth//visit//EN")
    cal.add("version", "2.0")
    cal.add("method", "PUBLISH")
    event = Event()
    event.add("uid", uid)
    event.add("dtstamp", now or datetime.now(UTC))
    event.add("dtstart", start.astimezone(UTC))
    event.add("dtend", start.astimezone(UTC) + VISIT_LENGTH)
    event.add("summary", "Video visit")
    event.add("description", f"Join your video visit: {url}")
    event.add("url", url)
    cal.add_component(event)
    return bytes(cal.to_ical())
