"""The synthetic shop's generative model, in pieces that draw from a caller's random generator.

Two callers share it: :func:`gemrec.data.synthetic.generate_shop` draws everything from one
generator and keeps the whole shop in memory (the demo, the tests), and
:func:`gemrec.data.generate.generate_to_parquet` draws the catalogue once and then users and their
events one block at a time, each block from its own generator, writing Parquet parts as it goes.
Each function documents the draws it makes, in order: a caller that makes the same calls in the
same order gets the same shop.

Notes
-----
Items belong to categories (every category gets at least one; the rest follow a mildly skewed
size distribution) and carry a long-tailed popularity ``(rank + 1) ** -popularity_exponent`` within
their category, a brand, a price and a title. Users like ``interests_per_user`` categories with
Dirichlet weights. A session browses one of the user's interests with probability ``focus`` (else a
random category); each view picks an item of the session's category by popularity. A view becomes a
click with probability 0.35 (0.5 when the category is one of the user's interests), a click a fav
with 0.08, a click a cart with 0.3, a cart a purchase with 0.5. Views of a session are about two
minutes apart, funnel steps 20 s apart; sessions start uniformly in the window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gemrec.errors import ParameterError

__all__ = [
    "EVENT_TYPES",
    "START",
    "Catalogue",
    "EventBlock",
    "UserBlock",
    "check_categories",
    "check_int",
    "check_nonnegative",
    "check_probability",
    "draw_catalogue",
    "draw_events",
    "draw_social",
    "draw_users",
    "events_per_view",
    "item_ids",
    "user_ids",
]

#: event types in funnel order
EVENT_TYPES = ("view", "click", "fav", "cart", "purchase")
#: 2026-01-01T00:00:00Z, the start of the activity window
START = 1_767_225_600

#: funnel probabilities (see the module notes)
_CLICK_LIKED, _CLICK_OTHER, _FAV, _CART, _BUY = 0.5, 0.35, 0.08, 0.3, 0.5

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
_BRANDS_PER_CATEGORY = 5


def user_ids(n_users: int, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Raw ids ``u0001``, ``u0002`` ... of users ``start .. stop - 1`` of a shop of ``n_users``."""
    stop = n_users if stop is None else stop
    width = max(4, len(str(n_users)))
    return np.array([f"u{i:0{width}d}" for i in range(start + 1, stop + 1)])


def item_ids(n_items: int, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Raw ids ``sku-00001`` ... of items ``start .. stop - 1`` of a catalogue of ``n_items``."""
    stop = n_items if stop is None else stop
    width = max(5, len(str(n_items)))
    return np.array([f"sku-{i:0{width}d}" for i in range(start + 1, stop + 1)])


@dataclass(frozen=True)
class Catalogue:
    """Every item's category, popularity and the draws its table row is formatted from.

    Attributes
    ----------
    categories : list of str, length n_categories
    item_category : ndarray of int32, shape (n_items,)
    popularity : ndarray of float64, shape (n_items,)
        Sampling weight of each item within its category.
    price : ndarray of float64, shape (n_items,)
    brand_names : ndarray of object, shape (n_categories * 5,)
    brand_index : ndarray of int64, shape (n_items,)
    adjectives, nouns : ndarray of str, shape (n_items,)
    model_numbers : ndarray of int64, shape (n_items,)
    """

    categories: list[str]
    item_category: np.ndarray
    popularity: np.ndarray
    price: np.ndarray
    brand_names: np.ndarray
    brand_index: np.ndarray
    adjectives: np.ndarray
    nouns: np.ndarray
    model_numbers: np.ndarray

    @property
    def n_items(self) -> int:
        return len(self.item_category)

    @property
    def n_categories(self) -> int:
        return len(self.categories)

    def items_frame(self, start: int = 0, stop: int | None = None) -> pd.DataFrame:
        """Rows ``start .. stop - 1`` of the items table (``item_id, category, brand, title,
        price``)."""
        stop = self.n_items if stop is None else stop
        sl = slice(start, stop)
        cat = self.item_category[sl]
        brand = self.brand_names[self.brand_index[sl]]
        names = np.array(self.categories, dtype=object)[cat]
        titles = [
            f"{b} {a} {c} {n} {m}"
            for b, a, c, n, m in zip(
                brand,
                self.adjectives[sl],
                names,
                self.nouns[sl],
                self.model_numbers[sl],
                strict=True,
            )
        ]
        return pd.DataFrame(
            {
                "item_id": item_ids(self.n_items, start, stop),
                "category": names,
                "brand": brand,
                "title": titles,
                "price": self.price[sl],
            }
        )

    def category_cdf(self) -> tuple[np.ndarray, np.ndarray]:
        """Items sorted by category and the per-category popularity cdf over them.

        Returns
        -------
        order : ndarray of int64, shape (n_items,)
            Item ids sorted by category (stable).
        cdf : ndarray of float64, shape (n_items,)
            ``c + (cumulative popularity within c) / (popularity mass of c)`` for the item at each
            position: category ``c`` occupies ``[c, c + 1)``.
        """
        order = np.argsort(self.item_category, kind="stable")
        pop_sorted = self.popularity[order]
        cat_sorted = self.item_category[order]
        mass = np.bincount(cat_sorted, weights=pop_sorted, minlength=self.n_categories)
        within = np.cumsum(pop_sorted) - np.concatenate([[0.0], np.cumsum(mass)[:-1]])[cat_sorted]
        return order, cat_sorted + within / mass[cat_sorted]


def draw_catalogue(
    rng: np.random.Generator, n_items: int, n_categories: int, popularity_exponent: float
) -> Catalogue:
    """Draw the catalogue (category sizes, assignment, popularity ranks, brands, prices, titles)."""
    categories = _category_names(n_categories)
    cat_sizes = np.ones(n_categories, np.int64)
    extra = rng.multinomial(n_items - n_categories, rng.dirichlet(np.full(n_categories, 5.0)))
    cat_sizes += extra
    item_category = rng.permutation(np.repeat(np.arange(n_categories), cat_sizes)).astype(np.int32)
    popularity = np.empty(n_items)
    order = np.argsort(item_category, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(item_category, minlength=n_categories))])
    for c in range(n_categories):
        members = order[bounds[c] : bounds[c + 1]]
        ranks = rng.permutation(len(members))
        popularity[members] = (ranks + 1.0) ** (-float(popularity_exponent))
    brand_names = np.array(
        [_brand_name(rng) for _ in range(n_categories * _BRANDS_PER_CATEGORY)], dtype=object
    )
    brand_index = item_category * _BRANDS_PER_CATEGORY + np.minimum(
        rng.geometric(0.45, n_items) - 1, _BRANDS_PER_CATEGORY - 1
    )
    base_price = np.exp(rng.normal(3.0, 0.8, n_categories))
    price = np.round(base_price[item_category] * np.exp(rng.normal(0.0, 0.35, n_items)), 2)
    price = np.maximum(price, 0.99)
    adjectives = rng.choice(_ADJECTIVES, n_items)
    nouns = rng.choice(_NOUNS, n_items)
    model_numbers = rng.integers(100, 999, n_items)
    return Catalogue(
        categories,
        item_category,
        popularity,
        price,
        brand_names,
        brand_index,
        adjectives,
        nouns,
        model_numbers,
    )


@dataclass(frozen=True)
class UserBlock:
    """A block of users: their true interests and their table columns.

    Attributes
    ----------
    interest : ndarray of float64, shape (n, n_categories)
        Rows sum to 1; zero outside the user's interests.
    main_category : ndarray of int32, shape (n,)
    age_group, country : ndarray of str, shape (n,)
    signup_timestamp : ndarray of int64, shape (n,)
    """

    interest: np.ndarray
    main_category: np.ndarray
    age_group: np.ndarray
    country: np.ndarray
    signup_timestamp: np.ndarray

    def users_frame(self, ids: np.ndarray) -> pd.DataFrame:
        """The users table rows: ``user_id, age_group, country, signup_timestamp``."""
        return pd.DataFrame(
            {
                "user_id": ids,
                "age_group": self.age_group,
                "country": self.country,
                "signup_timestamp": self.signup_timestamp,
            }
        )


def draw_users(
    rng: np.random.Generator, n: int, n_categories: int, interests_per_user: int
) -> UserBlock:
    """Draw ``n`` users' interests (categories, Dirichlet weights), then their attributes."""
    interest = np.zeros((n, n_categories))
    rows = np.repeat(np.arange(n), interests_per_user)
    chosen = np.argsort(rng.random((n, n_categories)), axis=1)[:, :interests_per_user]
    weights = rng.dirichlet(np.full(interests_per_user, 2.0), n)
    interest[rows, chosen.ravel()] = weights.ravel()
    main_category = interest.argmax(axis=1).astype(np.int32)
    age_group = rng.choice(_AGE_GROUPS, n, p=[0.2, 0.3, 0.25, 0.15, 0.1])
    country = rng.choice(_COUNTRIES, n)
    signup = START - rng.integers(0, 365 * 86400, n)
    return UserBlock(interest, main_category, age_group, country, signup)


def draw_social(
    rng: np.random.Generator,
    main_category: np.ndarray,
    n_categories: int,
    friends_per_user: float,
    friend_homophily: float,
) -> np.ndarray:
    """Friendships, mostly among users sharing a main interest.

    Returns
    -------
    ndarray of int64, shape (n_pairs, 2)
        Both directions of every friendship, sorted, no self-loops.
    """
    n_users = len(main_category)
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
    # each ordered pair as one int64 (lexicographic order kept): a 1-D unique, fast at 1M users
    a, b = src[keep].astype(np.int64), dst[keep].astype(np.int64)
    codes = np.unique(np.concatenate([a * n_users + b, b * n_users + a]))
    pairs: np.ndarray = np.c_[codes // n_users, codes % n_users]
    return pairs


@dataclass(frozen=True)
class EventBlock:
    """The events of a block of users, sorted by time (ties: view order, then funnel stage).

    Attributes
    ----------
    user : ndarray of int64, shape (n_events,)
        Index of the user within the block.
    item : ndarray of int64, shape (n_events,)
    stage : ndarray of int64, shape (n_events,)
        Index into :data:`EVENT_TYPES`.
    timestamp : ndarray of int64, shape (n_events,)
        Epoch seconds.
    value : ndarray of float64, shape (n_events,)
        The price for purchases, NaN otherwise.
    session : ndarray of int64, shape (n_events,)
        Index of the session within the block.
    n_sessions : int
    """

    user: np.ndarray
    item: np.ndarray
    stage: np.ndarray
    timestamp: np.ndarray
    value: np.ndarray
    session: np.ndarray
    n_sessions: int

    def __len__(self) -> int:
        return len(self.user)

    def event_types(self) -> np.ndarray:
        """Event type names (object array)."""
        out: np.ndarray = np.array(EVENT_TYPES, dtype=object)[self.stage]
        return out


def draw_events(
    rng: np.random.Generator,
    interest: np.ndarray,
    catalogue: Catalogue,
    *,
    sessions_per_user: float,
    views_per_session: float,
    focus: float,
    days: int,
    cdf: tuple[np.ndarray, np.ndarray] | None = None,
) -> EventBlock:
    """Draw the sessions, views and funnels of the users whose interests are ``interest``.

    Parameters
    ----------
    rng : numpy.random.Generator
    interest : ndarray of float64, shape (n_users, n_categories)
    catalogue : Catalogue
    sessions_per_user, views_per_session : float
        Means of the ``1 + Poisson`` session and view counts.
    focus : float
    days : int
    cdf : tuple, optional
        ``catalogue.category_cdf()``, computed once by callers drawing many blocks.
    """
    n_users, n_categories = interest.shape
    n_items = catalogue.n_items
    item_category, price = catalogue.item_category, catalogue.price
    n_sessions = 1 + rng.poisson(max(sessions_per_user - 1.0, 0.0), n_users)
    s_user = np.repeat(np.arange(n_users), n_sessions)
    n_s = len(s_user)
    # session category: one of the user's interests with probability `focus`, else uniform
    cum_interest = np.cumsum(interest, axis=1)
    pick = (cum_interest[s_user] < rng.random(n_s)[:, None]).sum(axis=1)
    s_cat = np.where(rng.random(n_s) < focus, np.minimum(pick, n_categories - 1),
                     rng.integers(0, n_categories, n_s))  # fmt: skip
    s_start = START + rng.integers(0, days * 86400, n_s)
    n_views = 1 + rng.poisson(max(views_per_session - 1.0, 0.0), n_s)
    v_session = np.repeat(np.arange(n_s), n_views)
    v_cat = s_cat[v_session]
    # sample items within the category by popularity: per-category cdf segments [c, c + 1)
    order, item_cdf = catalogue.category_cdf() if cdf is None else cdf
    pos = np.searchsorted(item_cdf, v_cat + rng.random(len(v_cat)) * (1 - 1e-12), side="right")
    v_item = order[np.minimum(pos, n_items - 1)]
    v_user = s_user[v_session]
    liked = interest[v_user, item_category[v_item]] > 0
    click = rng.random(len(v_item)) < np.where(liked, _CLICK_LIKED, _CLICK_OTHER)
    fav = click & (rng.random(len(v_item)) < _FAV)
    cart = click & (rng.random(len(v_item)) < _CART)
    buy = cart & (rng.random(len(v_item)) < _BUY)
    # one row per event: stage s of view v; events within a session follow in funnel order
    stages = np.stack([np.ones_like(click), click, fav, cart, buy], axis=1)
    v_idx, stage = np.nonzero(stages)
    # views ~2 minutes apart within a session; funnel steps 20 s apart after their view
    view_rank = (
        np.arange(len(v_session)) - np.concatenate([[0], np.cumsum(n_views)[:-1]])[v_session]
    )
    view_time = s_start[v_session] + view_rank * 120 + rng.integers(0, 30, len(v_session))
    ts = view_time[v_idx] + stage * 20
    e_item = v_item[v_idx]
    value = np.where(stage == 4, price[e_item], np.nan)
    ev_order = np.lexsort((stage, v_idx, ts))
    return EventBlock(
        user=v_user[v_idx][ev_order].astype(np.int64),
        item=e_item[ev_order].astype(np.int64),
        stage=stage[ev_order].astype(np.int64),
        timestamp=ts[ev_order].astype(np.int64),
        value=value[ev_order],
        session=v_session[v_idx][ev_order].astype(np.int64),
        n_sessions=n_s,
    )


def events_per_view(focus: float, interests_per_user: int, n_categories: int) -> float:
    """Expected events per view (the view plus its funnel steps).

    A view is of a liked category with probability ``focus + (1 - focus) * i / C`` (``i``
    interests among ``C`` categories); its click probability follows, and a click brings a fav, a
    cart and half a cart's purchase on average.
    """
    liked = focus + (1.0 - focus) * min(interests_per_user, n_categories) / n_categories
    click = liked * _CLICK_LIKED + (1.0 - liked) * _CLICK_OTHER
    return 1.0 + click * (1.0 + _FAV + _CART * (1.0 + _BUY))


def check_int(name: str, value: object, minimum: int) -> int:
    """``value`` as an int, or :class:`ParameterError` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ParameterError.invalid(name, f"an integer >= {minimum}", value)
    return int(value)


def check_probability(name: str, value: object) -> float:
    """``value`` as a float in [0, 1], or :class:`ParameterError` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise ParameterError.invalid(name, "a probability in [0, 1]", value)
    return float(value)


def check_nonnegative(name: str, value: object) -> float:
    """``value`` as a float >= 0, or :class:`ParameterError` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ParameterError.invalid(name, "a number >= 0", value)
    return float(value)


def check_categories(n_categories: object, n_items: int) -> int:
    """``n_categories`` as an int in ``[1, n_items]`` (every category holds an item)."""
    n = check_int("n_categories", n_categories, 1)
    if n > n_items:
        raise ParameterError.invalid("n_categories", f"at most n_items ({n_items})", n)
    return n


def _category_names(n: int) -> list[str]:
    if n <= len(_CATEGORY_NAMES):
        return list(_CATEGORY_NAMES[:n])
    return list(_CATEGORY_NAMES) + [f"category-{i}" for i in range(len(_CATEGORY_NAMES) + 1, n + 1)]


def _brand_name(rng: np.random.Generator) -> str:
    parts = rng.choice(_SYLLABLES, int(rng.integers(2, 4)))
    return "".join(parts).capitalize()
