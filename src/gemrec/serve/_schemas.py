"""Request and response bodies of the HTTP API (pydantic; they make the OpenAPI schema at /docs)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

__all__ = [
    "BlocklistOut",
    "BlocklistResult",
    "BlocklistUpdate",
    "ErrorOut",
    "EventBatch",
    "EventIn",
    "FieldErrorOut",
    "IngestResult",
    "ItemBatch",
    "ItemIn",
    "ItemsResult",
    "RecommendationOut",
    "RecommendationsOut",
    "ReloadIn",
    "SimilarOut",
    "UserBatch",
    "UserDeleted",
    "UserIn",
    "UsersResult",
    "ValidationErrorOut",
]


class _Strict(BaseModel):
    # the body must match its published schema exactly (422 naming the field otherwise): an unknown
    # field is a typo that must not be silently dropped, and no value is coerced to another type
    # (``"item_id": 0`` is not the id "0", ``"available": 0`` is not false); numbers are finite
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class EventIn(_Strict):
    user_id: str = Field(..., min_length=1, max_length=256, examples=["u42"])
    item_id: str = Field(..., min_length=1, max_length=256, examples=["i7"])
    event_type: str = Field(
        ..., min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.:-]+$", examples=["view"]
    )
    timestamp: float | None = Field(None, description="epoch seconds; default: time of arrival")
    event_id: str | None = Field(
        None, min_length=1, max_length=128, description="makes retries idempotent"
    )
    value: float | None = Field(None, description="optional quantity or rating")


class EventBatch(_Strict):
    events: list[EventIn]


class IngestResult(BaseModel):
    accepted: int
    duplicates: int


class RecommendationOut(BaseModel):
    item_id: str
    score: float
    reason: str | None = None


class RecommendationsOut(BaseModel):
    user_id: str
    items: list[RecommendationOut]
    strategy: str = Field(
        ...,
        description="personalized | fold_in (unseen user, from online events) | social | "
        "similar_users | popular_in_category | trending; prefixed 'offline:' when the store is "
        "unreachable (the model's list without online events)",
    )


class SimilarOut(BaseModel):
    item_id: str
    items: list[RecommendationOut]


class ItemIn(_Strict):
    item_id: str = Field(..., min_length=1, max_length=256)
    category: str | None = None
    brand: str | None = None
    title: str | None = Field(None, max_length=2000)
    price: float | None = Field(None, ge=0)
    available: bool | None = None


class ItemBatch(_Strict):
    items: list[ItemIn]


class ItemsResult(BaseModel):
    created: int
    updated: int


class ReloadIn(_Strict):
    model_dir: str | None = Field(
        None, description="new model directory; default: reload the current one"
    )


_ItemId = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class BlocklistUpdate(_Strict):
    add: list[_ItemId] = Field(
        default_factory=list,
        description="item ids to block; an id no item has yet is accepted, and an item added "
        "later under it is blocked from the start",
        examples=[["i7", "i9"]],
    )
    remove: list[_ItemId] = Field(
        default_factory=list,
        description="item ids to unblock, applied after `add` (an id in both ends unblocked)",
        examples=[["i3"]],
    )


class BlocklistResult(BaseModel):
    blocked: int = Field(..., description="ids blocked by this request (not blocked before)")
    unblocked: int = Field(..., description="ids unblocked by this request (blocked before)")
    not_in_catalogue: list[str] = Field(
        ..., description="ids of `add` that no item has (yet), sorted: blocked all the same"
    )


class BlocklistOut(BaseModel):
    item_ids: list[str] = Field(..., description="the blocked item ids, sorted")


class HistoryOut(BaseModel):
    user_id: str
    events: list[dict[str, Any]]


class ErrorOut(BaseModel):
    """The body of every error answer but 422 (400, 401, 404, 405, 413)."""

    detail: str = Field(..., description="what was wrong and how to fix it")


class FieldErrorOut(BaseModel):
    """One invalid field of a 422 answer."""

    loc: list[str | int] = Field(..., description="where: location, then field names or indices")
    field: str = Field(
        ..., description="``loc`` without its location, dotted: ``events.0.item_id``"
    )
    msg: str
    type: str


class ValidationErrorOut(BaseModel):
    """The body of a 422 answer: each invalid field, and one readable message."""

    detail: list[FieldErrorOut]
    message: str


_AttributeName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
_UserId = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class UserIn(_Strict):
    user_id: str = Field(..., min_length=1, max_length=256, examples=["u42"])
    attributes: dict[_AttributeName, str | int | float | bool | None] = Field(
        default_factory=dict,
        max_length=64,
        description="merged into the stored ones; the dataset's user columns (gender, age, ...) "
        "place a new user among similar users",
        examples=[{"gender": "F", "age": 25}],
        # keys outside the pattern are refused: the schema says so, not only the validator
        json_schema_extra={"additionalProperties": False},
    )
    friends: list[_UserId] | None = Field(
        None,
        max_length=10_000,
        description="user ids this user follows; replaces the stored list (omit to keep it); "
        "the user's own id is ignored",
        examples=[["u7", "u9"]],
    )

    @field_validator("friends")
    @classmethod
    def _no_self_tie(cls, friends: list[str] | None, info: ValidationInfo) -> list[str] | None:
        # a tie to oneself says nothing about anyone: dropped (the schema cannot forbid it)
        if friends is None:
            return None
        return [f for f in friends if f != info.data.get("user_id")]


class UserBatch(_Strict):
    users: list[UserIn]


class UsersResult(BaseModel):
    created: int
    updated: int


class UserDeleted(BaseModel):
    user_id: str
    deleted: bool
    events_removed: int
