"""Replay a shopping session against the in-process service (used by ``gemrec demo``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

__all__ = ["format_replay", "replay_session"]

Step = tuple[dict[str, Any] | None, dict[str, Any]]


@contextlib.contextmanager
def _client(app_or_client: FastAPI | TestClient) -> Iterator[TestClient]:
    if isinstance(app_or_client, TestClient):
        yield app_or_client
    else:
        with TestClient(app_or_client) as client:  # runs the lifespan (loads the model)
            yield client


def replay_session(
    app_or_client: FastAPI | TestClient,
    user_id: str,
    events: Sequence[dict[str, Any]],
    *,
    k: int = 10,
    api_key: str | None = None,
) -> list[Step]:
    """Post ``events`` one at a time and fetch the user's list before the first and after each.

    Parameters
    ----------
    app_or_client : FastAPI or TestClient
        An app from :func:`~gemrec.serve.create_app` (started here) or a started client.
    user_id : str
    events : sequence of dict
        ``{"item_id", "event_type", ...}``; ``user_id`` is filled in.
    k : int

    Returns
    -------
    list of (event or None, recommendations response)
        ``len(events) + 1`` steps; the first has no event (the list before the session).
    """
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    steps: list[Step] = []
    with _client(app_or_client) as client:

        def fetch() -> dict[str, Any]:
            r = client.get(f"/v1/users/{user_id}/recommendations", params={"k": k})
            r.raise_for_status()
            body: dict[str, Any] = r.json()
            return body

        steps.append((None, fetch()))
        for event in events:
            ev = {"user_id": user_id, **event}
            r = client.post("/v1/events", json={"events": [ev]}, headers=headers)
            r.raise_for_status()
            steps.append((ev, fetch()))
    return steps


def format_replay(steps: Sequence[Step], width: int = 6) -> str:
    """Human-readable account of how the list changed after each event."""
    lines: list[str] = []
    previous: list[str] = []
    for event, recs in steps:
        ids = [r["item_id"] for r in recs["items"]]
        if event is None:
            lines.append(f"before the session [{recs['strategy']}]: {', '.join(ids[:width])}")
        else:
            new = [i for i in ids if i not in previous]
            gone = [i for i in previous if i not in ids]
            lines.append(
                f"after {event['event_type']} {event['item_id']} [{recs['strategy']}]: "
                f"{', '.join(ids[:width])}"
                + (f"  (+{len(new)} new: {', '.join(new[:3])}; -{len(gone)})" if previous else "")
            )
        previous = ids
    return "\n".join(lines)
