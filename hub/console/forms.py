"""Reading the console's forms and filters: bounded, typed, and refused with a reason."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from typing import Any, cast, get_args

from connectors.identifiers import InvalidIdentifier, validate_subject
from infra.forms import BadForm, read_form
from observability.audit import AuditFilter, Outcome

__all__ = ["BadForm", "LogFilter", "read_form", "timeline_view"]

_MAX_FIELD = 200
OUTCOMES: tuple[str, ...] = get_args(Outcome)
PAGE_SIZES = (25, 50, 100)
#: Whether records name an actor (the person acting for a client) this hub's log can filter.
HAS_ACTOR = "actor" in {f.name for f in fields(AuditFilter)}


@dataclass(frozen=True)
class LogFilter:
    """The access log's filter as the auditor typed it (kept in a view), and as a query."""

    values: dict[str, str]

    FIELDS = (
        "client_id", "agency", *(("actor",) if HAS_ACTOR else ()), "purpose", "operation",
        "subject", "outcome", "trace_id", "from", "to", "first",
    )

    @classmethod
    def of(cls, form: dict[str, Any]) -> LogFilter:
        """Checked: raises BadForm naming the field at fault."""
        values = {name: str(form.get(name, "")).strip() for name in cls.FIELDS}
        for name, value in values.items():
            if len(value) > _MAX_FIELD:
                raise BadForm(f"{name}: longer than {_MAX_FIELD} characters")
        if values["subject"]:
            try:
                values["subject"] = validate_subject(values["subject"])
            except InvalidIdentifier:
                raise BadForm(
                    "subject: expected a permit number, an SSN or a unified social credit code"
                ) from None
        if values["outcome"] and values["outcome"] not in OUTCOMES:
            raise BadForm(f"outcome: one of {', '.join(OUTCOMES)}")
        for name in ("from", "to"):
            if values[name]:
                _time(values[name], name)
        if values["first"] and values["first"] not in {str(size) for size in PAGE_SIZES}:
            raise BadForm(f"page size: one of {', '.join(map(str, PAGE_SIZES))}")
        return cls(values)

    @property
    def page_size(self) -> int:
        return int(self.values.get("first") or PAGE_SIZES[0])

    @property
    def subject(self) -> str | None:
        return self.values.get("subject") or None

    def query(self) -> AuditFilter:
        v = self.values
        extra: dict[str, Any] = {"actor": v.get("actor") or None} if HAS_ACTOR else {}
        return AuditFilter(
            subject=v.get("subject") or None,
            client_id=v.get("client_id") or None,
            agency=v.get("agency") or None,
            purpose=v.get("purpose") or None,
            operation=v.get("operation") or None,
            outcome=cast(Outcome, v["outcome"]) if v.get("outcome") in OUTCOMES else None,
            trace_id=v.get("trace_id") or None,
            time_from=_time(v["from"], "from") if v.get("from") else None,
            time_to=_time(v["to"], "to") if v.get("to") else None,
            **extra,
        )


def _time(text: str, name: str) -> dt.datetime:
    """A time as a datetime-local field sends it (no offset: UTC), or ISO 8601 with one."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise BadForm(f"{name}: expected a time such as 2026-01-31T08:00 (UTC)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def timeline_view(form: dict[str, Any]) -> dict[str, str]:
    """The timeline's view: a checked subject and a number of days (1..366, default 30)."""
    try:
        subject = validate_subject(str(form.get("subject", "")).strip())
    except InvalidIdentifier:
        raise BadForm(
            "subject: expected a permit number, an SSN or a unified social credit code"
        ) from None
    days = str(form.get("days", "") or "30").strip()
    if not days.isdigit() or not 1 <= int(days) <= 366:
        raise BadForm("days: a whole number from 1 to 366")
    return {"subject": subject, "days": days}
