"""A seeded synthetic shop with known ground truth, in memory, for the demo and for tests.

Users have latent interests over a few categories; a long-tailed catalogue has brands, titles and
prices; shopping sessions run view -> click -> cart -> purchase funnels with timestamps; friends
mostly share a main interest. Because the generating structure is known (``SyntheticShop.truth``),
tests can check that a model recovers it.

Examples
--------
>>> shop = generate_shop(n_users=200, n_items=100, seed=1)
>>> sorted(shop.events.columns)[:4]
['event_id', 'event_type', 'item_id', 'session_id']
>>> shop.truth.interest_categories("u0001")  # doctest: +SKIP
['garden', 'toys']
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from gemrec.data.shop_model import (
    EVENT_TYPES,
    EventBlock,
    check_categories,
    check_int,
    check_nonnegative,
    check_probability,
    draw_catalogue,
    draw_events,
    draw_social,
    draw_users,
    item_ids,
    user_ids,
)
from gemrec.errors import ParameterError

__all__ = [
    "EVENT_TYPES",
    "ShopTruth",
    "SyntheticShop",
    "events_frame",
    "generate_shop",
    "write_shop",
]


@dataclass(frozen=True)
class ShopTruth:
    """The structure the shop was generated from (rows aligned with ``users`` / ``items``).

    Attributes
    ----------
    categories : list of str, length n_categories
    user_interest : ndarray of float64, shape (n_users, n_categories)
        Each user's true preference over categories (rows sum to 1; zero outside their interests).
    user_main_category : ndarray of int32, shape (n_users,)
        The strongest interest; friends are drawn mostly among users sharing it.
    item_category : ndarray of int32, shape (n_items,)
    item_popularity : ndarray of float64, shape (n_items,)
        The long-tailed sampling weight of each item within its category.
    user_ids, item_ids : ndarray of str
    """

    categories: list[str]
    user_interest: np.ndarray
    user_main_category: np.ndarray
    item_category: np.ndarray
    item_popularity: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray

    def interest_categories(self, user_id: str) -> list[str]:
        """Names of the categories ``user_id`` is truly interested in, strongest first."""
        idx = np.flatnonzero(self.user_ids == user_id)
        if len(idx) == 0:
            raise ParameterError.invalid("user_id", "a user id of this shop", user_id)
        row = self.user_interest[idx[0]]
        order = np.argsort(-row, kind="stable")
        return [self.categories[c] for c in order if row[c] > 0]


@dataclass(frozen=True)
class SyntheticShop:
    """Generated tables plus their ground truth.

    Attributes
    ----------
    events : DataFrame
        ``event_id, user_id, item_id, event_type, timestamp`` (int epoch seconds), ``value``
        (the price for purchases, NaN otherwise), ``session_id``; sorted by time.
    items : DataFrame
        ``item_id, category, brand, title, price``.
    users : DataFrame
        ``user_id, age_group, country, signup_timestamp``.
    social : DataFrame
        ``user_id, friend_id``, both directions of every friendship.
    truth : ShopTruth
    """

    events: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame
    social: pd.DataFrame
    truth: ShopTruth


def generate_shop(
    n_users: int = 2000,
    n_items: int = 1000,
    n_categories: int = 20,
    *,
    interests_per_user: int = 2,
    sessions_per_user: float = 6.0,
    views_per_session: float = 5.0,
    focus: float = 0.9,
    popularity_exponent: float = 1.0,
    friends_per_user: float = 4.0,
    friend_homophily: float = 0.8,
    days: int = 90,
    seed: int = 0,
) -> SyntheticShop:
    """Generate a shop.

    Parameters
    ----------
    n_users, n_items, n_categories : int
    interests_per_user : int
        Categories each user truly likes (weights drawn from a Dirichlet).
    sessions_per_user, views_per_session : float
        Means of the (1 + Poisson) session and view counts (defaults: ~100k events for
        2,000 users).
    focus : float
        Probability that a session browses one of the user's interests (else a random category).
    popularity_exponent : float
        Zipf exponent of item popularity within a category (larger = longer tail).
    friends_per_user : float
        Mean number of friendships a user starts (the graph is then symmetrised).
    friend_homophily : float
        Probability that a friend is drawn among users with the same main interest.
    days : int
        Length of the activity window starting 2026-01-01 UTC.
    seed : int

    Returns
    -------
    SyntheticShop

    Notes
    -----
    The model is :mod:`gemrec.data.shop_model`'s. A view of item i in a session of category c has
    probability proportional to ``popularity_i = (rank_i + 1) ** -popularity_exponent`` among the
    items of c. Each view becomes a click with probability 0.35 (0.5 when c is among the user's
    interests), a click a fav with 0.08, a click a cart with 0.3, a cart a purchase with 0.5.
    Views of a session are about two minutes apart, funnel steps 20 s apart; sessions start
    uniformly in the window. Everything is drawn from one generator seeded with ``seed``, in the
    order catalogue, users, friendships, events.
    """
    n_users = check_int("n_users", n_users, 1)
    n_items = check_int("n_items", n_items, 1)
    n_categories = check_categories(n_categories, n_items)
    interests_per_user = min(check_int("interests_per_user", interests_per_user, 1), n_categories)
    days = check_int("days", days, 1)
    seed = check_int("seed", seed, 0)
    focus = check_probability("focus", focus)
    friend_homophily = check_probability("friend_homophily", friend_homophily)
    sessions_per_user = check_nonnegative("sessions_per_user", sessions_per_user)
    views_per_session = check_nonnegative("views_per_session", views_per_session)
    friends_per_user = check_nonnegative("friends_per_user", friends_per_user)
    popularity_exponent = check_nonnegative("popularity_exponent", popularity_exponent)

    rng = np.random.default_rng(seed)
    catalogue = draw_catalogue(rng, n_items, n_categories, float(popularity_exponent))
    users_ = user_ids(n_users)
    items_ = item_ids(n_items)
    block = draw_users(rng, n_users, n_categories, interests_per_user)
    pairs = draw_social(rng, block.main_category, n_categories, friends_per_user, friend_homophily)
    social = pd.DataFrame({"user_id": users_[pairs[:, 0]], "friend_id": users_[pairs[:, 1]]})
    ev = draw_events(
        rng,
        block.interest,
        catalogue,
        sessions_per_user=sessions_per_user,
        views_per_session=views_per_session,
        focus=focus,
        days=days,
    )
    truth = ShopTruth(
        categories=catalogue.categories,
        user_interest=block.interest,
        user_main_category=block.main_category,
        item_category=catalogue.item_category,
        item_popularity=catalogue.popularity,
        user_ids=users_,
        item_ids=items_,
    )
    return SyntheticShop(
        events=events_frame(ev, users_, items_),
        items=catalogue.items_frame(),
        users=block.users_frame(users_),
        social=social,
        truth=truth,
    )


def events_frame(
    block: EventBlock,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    *,
    first_event: int = 1,
    first_session: int = 0,
) -> pd.DataFrame:
    """The events table of a block: ``event_id, user_id, item_id, event_type, timestamp, value,
    session_id``.

    Parameters
    ----------
    block : EventBlock
    user_ids : ndarray of str, shape (n_users_in_block,)
        Raw id of each user of the block.
    item_ids : ndarray of str, shape (n_items,)
    first_event, first_session : int
        Number of the block's first event (``e0000001`` is 1) and of its first session.
    """
    n_events = len(block)
    numbers = np.arange(first_event, first_event + n_events).astype(str)
    return pd.DataFrame(
        {
            "event_id": np.char.add("e", np.char.zfill(numbers, 7)),
            "user_id": user_ids[block.user],
            "item_id": item_ids[block.item],
            "event_type": block.event_types(),
            "timestamp": block.timestamp,
            "value": block.value,
            "session_id": block.session + first_session,
        }
    )


def write_shop(shop: SyntheticShop, directory: str | Path) -> dict[str, Path]:
    """Write the shop as CSV files that ``gemrec import --format events`` reads.

    Files: ``events.csv`` (``user_id,item_id,event_type,timestamp,value,event_id``), ``items.csv``
    (``item_id,category,brand,title,price``), ``users.csv`` (``user_id,age_group,country,
    signup_timestamp``), ``social.csv`` (``user_id,friend_id``).

    Returns
    -------
    dict of str to Path
        ``{"events": ..., "items": ..., "users": ..., "social": ...}``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {name: directory / f"{name}.csv" for name in ("events", "items", "users", "social")}
    ev = shop.events[["user_id", "item_id", "event_type", "timestamp", "value", "event_id"]]
    ev.to_csv(paths["events"], index=False, float_format="%.2f")
    shop.items.to_csv(paths["items"], index=False, float_format="%.2f")
    shop.users.to_csv(paths["users"], index=False)
    shop.social.to_csv(paths["social"], index=False)
    return paths
