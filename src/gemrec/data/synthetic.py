"""A seeded synthetic shop with known ground truth, for the demo and for tests.

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

from gemrec.errors import ParameterError

__all__ = ["EVENT_TYPES", "ShopTruth", "SyntheticShop", "generate_shop", "write_shop"]

#: event types in funnel order
EVENT_TYPES = ("view", "click", "fav", "cart", "purchase")

_CATEGORY_NAMES = [
    "books", "electronics", "garden", "toys", "fashion", "shoes", "beauty", "sports", "kitchen",
    "music", "games", "pets", "office", "baby", "tools", "grocery", "jewelry", "outdoor", "auto",
    "health", "furniture", "lighting", "bags", "watches", "art", "crafts", "camping", "cycling",
    "fitness", "photo",
]  # fmt: skip
_NOUNS = ["set", "kit", "pack", "classic", "pro", "mini", "max", "lite", "plus", "edition"]
_ADJECTIVES = ["red", "blue", "compact", "deluxe", "eco", "smart", "vintage", "urban", "soft"]
_SYLLABLES = ["ka", "lo", "mi", "ra", "ze", "to", "vi", "no", "su", "pe", "dar", "lin", "mor"]
_AGE_GROUPS = np.array(["18-24", "25-34", "35-44", "45-54", "55+"])
_COUNTRIES = np.array(["DE", "FR", "GB", "US", "NL", "ES", "IT", "PL"])
#: 2026-01-01T00:00:00Z
_START = 1_767_225_600


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


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ParameterError.invalid(name, f"an integer >= {minimum}", value)
    return int(value)


def _check_prob(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise ParameterError.invalid(name, "a probability in [0, 1]", value)
    return float(value)


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
    A view of item i in a session of category c has probability proportional to
    ``popularity_i = (rank_i + 1) ** -popularity_exponent`` among the items of c. Each view becomes
    a click with probability 0.35 (0.5 when c is among the user's interests), a click a fav with
    0.08, a click a cart with 0.3, a cart a purchase with 0.5. Views of a session are about two
    minutes apart, funnel steps 20 s apart; sessions start uniformly in the window.
    """
    n_users = _check_int("n_users", n_users, 1)
    n_items = _check_int("n_items", n_items, 1)
    n_categories = _check_int("n_categories", n_categories, 1)
    if n_categories > n_items:
        raise ParameterError.invalid("n_categories", f"at most n_items ({n_items})", n_categories)
    interests_per_user = _check_int("interests_per_user", interests_per_user, 1)
    interests_per_user = min(interests_per_user, n_categories)
    days = _check_int("days", days, 1)
    seed = _check_int("seed", seed, 0)
    focus = _check_prob("focus", focus)
    friend_homophily = _check_prob("friend_homophily", friend_homophily)
    for pname, pval in (
        ("sessions_per_user", sessions_per_user),
        ("views_per_session", views_per_session),
        ("friends_per_user", friends_per_user),
    ):
        if isinstance(pval, bool) or not isinstance(pval, int | float) or pval < 0:
            raise ParameterError.invalid(pname, "a number >= 0", pval)
    if (
        isinstance(popularity_exponent, bool)
        or not isinstance(popularity_exponent, int | float)
        or popularity_exponent < 0
    ):
        raise ParameterError.invalid("popularity_exponent", "a number >= 0", popularity_exponent)

    rng = np.random.default_rng(seed)
    categories = _category_names(n_categories)
    user_ids = np.array([f"u{i:0{max(4, len(str(n_users)))}d}" for i in range(1, n_users + 1)])
    item_ids = np.array([f"sku-{i:0{max(5, len(str(n_items)))}d}" for i in range(1, n_items + 1)])

    # ------------------------------------------------------------------ catalogue
    # every category gets at least one item; the rest follow a mildly skewed category size
    cat_sizes = np.ones(n_categories, np.int64)
    extra = rng.multinomial(n_items - n_categories, rng.dirichlet(np.full(n_categories, 5.0)))
    cat_sizes += extra
    item_category = rng.permutation(np.repeat(np.arange(n_categories), cat_sizes)).astype(np.int32)
    popularity = np.empty(n_items)
    for c in range(n_categories):
        members = np.flatnonzero(item_category == c)
        ranks = rng.permutation(len(members))
        popularity[members] = (ranks + 1.0) ** (-float(popularity_exponent))
    brands_per_cat = 5
    brand_names = np.array(
        [_brand_name(rng) for _ in range(n_categories * brands_per_cat)], dtype=object
    )
    brand_idx = item_category * brands_per_cat + np.minimum(
        rng.geometric(0.45, n_items) - 1, brands_per_cat - 1
    )
    base_price = np.exp(rng.normal(3.0, 0.8, n_categories))
    price = np.round(base_price[item_category] * np.exp(rng.normal(0.0, 0.35, n_items)), 2)
    price = np.maximum(price, 0.99)
    adjectives = rng.choice(_ADJECTIVES, n_items)
    nouns = rng.choice(_NOUNS, n_items)
    titles = [
        f"{brand_names[b]} {a} {categories[c]} {n} {m}"
        for b, a, c, n, m in zip(
            brand_idx,
            adjectives,
            item_category,
            nouns,
            rng.integers(100, 999, n_items),
            strict=True,
        )
    ]
    items = pd.DataFrame(
        {
            "item_id": item_ids,
            "category": np.array(categories, dtype=object)[item_category],
            "brand": brand_names[brand_idx],
            "title": titles,
            "price": price,
        }
    )

    # ------------------------------------------------------------------ users and interests
    interest = np.zeros((n_users, n_categories))
    rows = np.repeat(np.arange(n_users), interests_per_user)
    chosen = np.argsort(rng.random((n_users, n_categories)), axis=1)[:, :interests_per_user]
    weights = rng.dirichlet(np.full(interests_per_user, 2.0), n_users)
    interest[rows, chosen.ravel()] = weights.ravel()
    main_category = interest.argmax(axis=1).astype(np.int32)
    users = pd.DataFrame(
        {
            "user_id": user_ids,
            "age_group": rng.choice(_AGE_GROUPS, n_users, p=[0.2, 0.3, 0.25, 0.15, 0.1]),
            "country": rng.choice(_COUNTRIES, n_users),
            "signup_timestamp": _START - rng.integers(0, 365 * 86400, n_users),
        }
    )

    # ------------------------------------------------------------------ social graph
    n_friend = rng.poisson(friends_per_user, n_users)
    src = np.repeat(np.arange(n_users), n_friend)
    same = rng.random(len(src)) < friend_homophily
    dst = rng.integers(0, n_users, len(src))
    by_cat = np.argsort(main_category, kind="stable")
    cat_start = np.searchsorted(main_category[by_cat], np.arange(n_categories))
    cat_count = np.bincount(main_category, minlength=n_categories)
    c_src = main_category[src[same]]
    dst[same] = by_cat[
        cat_start[c_src] + (rng.random(int(same.sum())) * cat_count[c_src]).astype(np.int64)
    ]
    keep = src != dst
    pairs = np.unique(
        np.concatenate([np.c_[src[keep], dst[keep]], np.c_[dst[keep], src[keep]]]), axis=0
    )
    social = pd.DataFrame({"user_id": user_ids[pairs[:, 0]], "friend_id": user_ids[pairs[:, 1]]})

    # ------------------------------------------------------------------ sessions and funnels
    n_sessions = 1 + rng.poisson(max(sessions_per_user - 1.0, 0.0), n_users)
    s_user = np.repeat(np.arange(n_users), n_sessions)
    n_s = len(s_user)
    # session category: one of the user's interests with probability `focus`, else uniform
    cum_interest = np.cumsum(interest, axis=1)
    pick = (cum_interest[s_user] < rng.random(n_s)[:, None]).sum(axis=1)
    s_cat = np.where(rng.random(n_s) < focus, np.minimum(pick, n_categories - 1),
                     rng.integers(0, n_categories, n_s))  # fmt: skip
    s_start = _START + rng.integers(0, days * 86400, n_s)
    n_views = 1 + rng.poisson(max(views_per_session - 1.0, 0.0), n_s)
    v_session = np.repeat(np.arange(n_s), n_views)
    v_cat = s_cat[v_session]
    # sample items within the category by popularity: per-category cdf segments [c, c + 1)
    order = np.argsort(item_category, kind="stable")
    pop_sorted = popularity[order]
    cat_sorted = item_category[order]
    mass = np.bincount(cat_sorted, weights=pop_sorted, minlength=n_categories)
    within = np.cumsum(pop_sorted) - np.concatenate([[0.0], np.cumsum(mass)[:-1]])[cat_sorted]
    cdf = cat_sorted + within / mass[cat_sorted]
    pos = np.searchsorted(cdf, v_cat + rng.random(len(v_cat)) * (1 - 1e-12), side="right")
    v_item = order[np.minimum(pos, n_items - 1)]
    v_user = s_user[v_session]
    liked = interest[v_user, item_category[v_item]] > 0
    click = rng.random(len(v_item)) < np.where(liked, 0.5, 0.35)
    fav = click & (rng.random(len(v_item)) < 0.08)
    cart = click & (rng.random(len(v_item)) < 0.3)
    buy = cart & (rng.random(len(v_item)) < 0.5)
    # one row per event: stage s of view v; events within a session follow in funnel order
    stages = np.stack([np.ones_like(click), click, fav, cart, buy], axis=1)
    v_idx, stage = np.nonzero(stages)
    # views ~2 minutes apart within a session; funnel steps 20 s apart after their view
    view_rank = (
        np.arange(len(v_session)) - np.concatenate([[0], np.cumsum(n_views)[:-1]])[v_session]
    )
    view_time = s_start[v_session] + view_rank * 120 + rng.integers(0, 30, len(v_session))
    ts = view_time[v_idx] + stage * 20
    e_type = np.array(EVENT_TYPES, dtype=object)[stage]
    e_item = v_item[v_idx]
    value = np.where(stage == 4, price[e_item], np.nan)
    ev_order = np.lexsort((stage, v_idx, ts))
    n_events = len(v_idx)
    events = pd.DataFrame(
        {
            "event_id": np.char.add("e", np.char.zfill(np.arange(1, n_events + 1).astype(str), 7)),
            "user_id": user_ids[v_user[v_idx]][ev_order],
            "item_id": item_ids[e_item][ev_order],
            "event_type": e_type[ev_order],
            "timestamp": ts[ev_order].astype(np.int64),
            "value": value[ev_order],
            "session_id": v_session[v_idx][ev_order].astype(np.int64),
        }
    )
    truth = ShopTruth(
        categories=categories,
        user_interest=interest,
        user_main_category=main_category,
        item_category=item_category,
        item_popularity=popularity,
        user_ids=user_ids,
        item_ids=item_ids,
    )
    return SyntheticShop(events=events, items=items, users=users, social=social, truth=truth)


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


def _category_names(n: int) -> list[str]:
    if n <= len(_CATEGORY_NAMES):
        return list(_CATEGORY_NAMES[:n])
    return list(_CATEGORY_NAMES) + [f"category-{i}" for i in range(len(_CATEGORY_NAMES) + 1, n + 1)]


def _brand_name(rng: np.random.Generator) -> str:
    parts = rng.choice(_SYLLABLES, int(rng.integers(2, 4)))
    return "".join(parts).capitalize()
