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
    "EventBatch",
    "EventIn",
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
]


class _Strict(BaseModel):
    # unknown fields are rejected (422 naming them): a typo must not be silently dropped
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


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
        "similar_users | popular_in_category | trending",
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


class HistoryOut(BaseModel):
    user_id: str
    events: list[dict[str, Any]]


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
    )
    friends: list[_UserId] | None = Field(
        None,
        max_length=10_000,
        description="user ids this user follows; replaces the stored list (omit to keep it)",
        examples=[["u7", "u9"]],
    )

    @field_validator("friends")
    @classmethod
    def _no_self_tie(cls, friends: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if friends is not None and info.data.get("user_id") in friends:
            raise ValueError(f"a user cannot follow themselves; remove {info.data['user_id']!r}")
        return friends


class UserBatch(_Strict):
    users: list[UserIn]


class UsersResult(BaseModel):
    created: int
    updated: int


class UserDeleted(BaseModel):
    user_id: str
    deleted: bool
    events_removed: int
