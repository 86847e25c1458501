"""The API's shapes: pydantic models that validate requests, shape responses and, from the same
classes, make the OpenAPI document (`portal.api.spec`). Field names are the seed's data
dictionary in camelCase; times are ISO 8601 in UTC with a `Z`."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, Base64Bytes, BaseModel, ConfigDict, Field, PlainSerializer
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


def with_example(example: dict[str, Any]) -> ConfigDict:
    """A model's example, as it travels (camelCase, times in UTC with a `Z`): the one source of
    the examples in the OpenAPI document, for the model itself and for every operation that
    reads or answers it (`example_of`). A subclass declares its own: it would otherwise inherit
    its parent's, which `tests/api/test_examples.py` refuses unless its own class accepts it."""
    return ConfigDict(json_schema_extra={"examples": [example]})


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


#: The `nextCursor` of every page in the examples: opaque, as the lab list hands them out.
EXAMPLE_CURSOR = "WyJsYWJfcmVzdWx0cyIsImYiLFt7InQiOiIyMDI2LTExLTAyVDA5OjQwOjAwKzAwOjAwIn0sNDgxMl1d"


def example_of(shape: Any) -> Any:
    """The example of a body or an answer: a model's own (`with_example`), or for a page of
    a model, a page of one item with a `nextCursor`. None when the model declares none."""
    if not (isinstance(shape, type) and issubclass(shape, BaseModel)):
        return None
    generic = shape.__pydantic_generic_metadata__
    if generic["origin"] is PageOut:
        item = example_of(generic["args"][0])
        return None if item is None else {"items": [item], "nextCursor": EXAMPLE_CURSOR}
    extra = shape.model_config.get("json_schema_extra")
    examples = extra.get("examples") if isinstance(extra, dict) else None
    return examples[0] if isinstance(examples, list) and examples else None


def dump(value: BaseModel) -> str:
    """A response body: the model by its aliases, as JSON written by pydantic-core in one pass
    (not a Python dict first: for a page of 50 results that took longer than reading them)."""
    return value.model_dump_json(by_alias=True)


__all__ = [
    "FileIn",
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
    "example_of",
    "with_example",
]


# --- People: shared by several resources -------------------------------------------------------


class FileIn(Schema):
    """A file sent in a JSON body: its name and its bytes in base64 (RFC 4648). The limits are
    the pages': PDF, PNG or JPEG, at most `ATTACHMENT_MAX_BYTES` each (a message: at most
    `ATTACHMENT_MAX_FILES` files and `ATTACHMENT_MAX_TOTAL_BYTES` in all)."""

    model_config = with_example({"filename": "report.pdf", "content": "JVBERi0xLjQK"})

    filename: str = Field(min_length=1, max_length=255)
    content: Base64Bytes


class PatientOut(Record):
    """A PatientProfile: patients are named by this id everywhere (`patientId`)."""

    model_config = with_example(
        {
            "id": 5,
            "createdAt": "2026-01-12T10:04:31Z",
            "updatedAt": "2026-09-03T14:22:08Z",
            "medicalRecordNumber": "EX-000042",
            "displayName": "Sam Example",
            "dateOfBirth": "1980-01-01",
            "primaryClinic": "Riverside Clinic",
            "isActive": True,
            "userId": 4,
        }
    )

    medical_record_number: str
    display_name: str
    date_of_birth: date | None
    primary_clinic: str | None
    is_active: bool
    #: The patient's user id (how messages name them: `to`), null while they have no portal
    #: account.
    user_id: int | None = None


class ProviderOut(Record):
    """A provider's profile; `userId` is how messages and appointments name them."""

    model_config = with_example(
        {
            "id": 1,
            "createdAt": "2025-06-02T08:00:00Z",
            "updatedAt": "2025-06-02T08:00:00Z",
            "userId": 2,
            "displayName": "Dr Mei Chen",
            "specialty": "Internal medicine",
            "clinic": "Riverside Clinic",
        }
    )

    user_id: int
    display_name: str
    specialty: str | None
    clinic: str | None
