"""The API's shapes: pydantic models that validate requests, shape responses and, from the same
classes, make the OpenAPI document (`portal.api.spec`). Field names are the seed's data
dictionary in camelCase; times are ISO 8601 in UTC with a `Z`."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer
from pydantic.alias_generators import to_camel

from portal.access import MAX_ID

T = TypeVar("T")


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


#: A moment in UTC, written with a `Z`.
Instant = Annotated[datetime, PlainSerializer(_utc, return_type=str)]


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("give a time zone, e.g. 2026-01-31T09:00:00Z")
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:00:00-05:00 has no UTC moment
        raise ValueError("this moment is outside the calendar") from None


#: A moment a client sends: it must say its zone (a bare local time would be a guess).
InstantIn = Annotated[datetime, AfterValidator(_aware)]

#: A record id: what a primary key can hold (`access.MAX_ID`, as for ids in URLs).
RecordId = Annotated[int, Field(ge=1, le=MAX_ID)]


class Schema(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are refused (422)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        from_attributes=True,
        extra="forbid",
        ser_json_timedelta="iso8601",
    )


class Record(Schema):
    """Every object the API returns has an id and its creation and last change times."""

    id: int
    created_at: Instant
    updated_at: Instant


class PageOut(Schema, Generic[T]):
    """One page of a list: `nextCursor` fetches the following one (null at the end)."""

    items: list[T]
    next_cursor: str | None = None


class PageQuery(Schema):
    """`limit` (1..100, default 20) and the `cursor` a previous page handed out."""

    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=512)


class Problem(Schema):
    """An error, as application/problem+json (RFC 9457)."""

    model_config = ConfigDict(extra="allow", alias_generator=to_camel, populate_by_name=True)

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: dict[str, list[str]] | None = None


def dump(value: Any) -> Any:
    """A response body: models by their aliases, lists of them, or plain JSON values."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, list):
        return [dump(v) for v in value]
    return value


__all__ = [
    "PatientOut",
    "ProviderOut",
    "Instant",
    "InstantIn",
    "PageOut",
    "PageQuery",
    "Problem",
    "Record",
    "RecordId",
    "Schema",
    "date",
    "dump",
]


# --- People: shared by several resources -------------------------------------------------------


class PatientOut(Record):
    """A PatientProfile: patients are named by this id everywhere (`patientId`)."""

    medical_record_number: str
    display_name: str
    date_of_birth: date | None
    primary_clinic: str | None
    is_active: bool


class ProviderOut(Record):
    """A provider's profile; `userId` is how messages and appointments name them."""

    user_id: int
    display_name: str
    specialty: str | None
    clinic: str | None
