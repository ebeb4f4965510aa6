"""Replay a shopping session against the in-process service (used by ``gemrec demo``)."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

__all__ = ["demo_session", "format_replay", "replay_session"]

_SESSION_TYPES = ("view", "view", "cart", "buy", "view", "buy")

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


def demo_session(
    model_dir: str | Path,
    dataset_dir: str | Path,
    *,
    user_id: str = "demo-shopper",
    n_events: int = 4,
    k: int = 5,
    store: str | None = None,
) -> tuple[list[Step], str]:
    """Replay a short, realistic shopping session against the in-process service.

    The session's items are the held-out (test) items of the dataset user with the most of them
    (then that user's other items), posted as ``view, view, cart, buy, ...`` by a *new* user
    ``user_id``: the list starts from a cold-start strategy and becomes personalised by fold-in
    after the first event.

    Returns
    -------
    steps : list of (event or None, recommendations response)
    text : str
        :func:`format_replay` of the steps, for printing.
    """
    from gemrec.data.store import Dataset
    from gemrec.serve._app import create_app
    from gemrec.serve._settings import ServeSettings

    ds = Dataset.open(dataset_dir)
    edges = ds.edges
    test = edges[edges["split"] == "test"]
    counts = (test if len(test) else edges).groupby("user").size()
    user = int(counts.idxmax())
    # that user's held-out items first, then their other items: a coherent real session
    mine = edges[edges["user"] == user].assign(held_out=lambda e: e["split"] == "test")
    items = mine.sort_values(["held_out", "item"], ascending=[False, True])["item"].to_numpy()
    items = items[:n_events]
    item_ids = ds.item_ids
    events = [
        {"item_id": str(item_ids[i]), "event_type": _SESSION_TYPES[n % len(_SESSION_TYPES)]}
        for n, i in enumerate(items)
    ]
    with tempfile.TemporaryDirectory(prefix="gemrec-demo-") as tmp:
        settings = ServeSettings(
            model_dir=Path(model_dir),
            dataset_dir=Path(dataset_dir),
            store=store or f"sqlite:///{Path(tmp) / 'events.sqlite3'}",
            precompute_lists="off",  # one user's session
        )
        steps = replay_session(create_app(settings), user_id, events, k=k)
    return steps, format_replay(steps)
