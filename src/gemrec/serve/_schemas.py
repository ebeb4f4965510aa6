"""Request and response bodies of the HTTP API (pydantic; they make the OpenAPI schema at /docs)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

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


class HistoryOut(BaseModel):
    user_id: str
    events: list[dict[str, Any]]
