"""The synthetic shop's sessions: which items users look at, in what order, and what they do.

A user's events are cut into sessions (a new one starts with chance ``SESSION_BREAK`` per event).
Each session has an intent leaf category drawn from the user's taste, and its first item is drawn
within that leaf with probability proportional to ``exp(popularity - price_sensitivity * log price)``
(log price relative to the leaf's mean). Each later event then

* with chance ``P_NEIGHBOUR`` moves to a close neighbour of the previous item (same leaf, usually
  the same brand and a similar price; nearer neighbours likelier), which gives item-to-item and
  sequential recommenders something real to learn;
* with chance ``P_SAME_LEAF`` draws a fresh item of the same leaf by utility;
* otherwise switches to another leaf drawn from the user's taste and draws an item there.

Every event walks a funnel: view, then click, cart and purchase, each step likelier for items that
fit the user (quality, affordability, taste for the category) and purchase likelier on the
promotion day and less likely when a price shock makes the item dearer.

Example:
    >>> from recdrill.data.shopsim import ShopSim
    >>> data = ShopSim(n_items=300, n_users=100, n_events=2_000, seed=3).generate()
    >>> int((data.interactions.event == 0).sum()) > int((data.interactions.event == 3).sum()) > 0
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recdrill.data.shopsim.catalog import ShopCatalog, neighbour_table
from recdrill.data.shopsim.clock import draw_event_offsets, draw_session_starts
from recdrill.data.shopsim.config import SECONDS_PER_DAY, ShopSimConfig
from recdrill.data.shopsim.drift import ShopDrift
from recdrill.data.shopsim.users import PRICE_SENSITIVITY_LEVELS, ShopUsers

SESSION_BREAK = 0.2  # chance that an event opens a new session: sessions of 5 events on average
P_NEIGHBOUR = 0.55  # next item: a neighbour of the previous one
P_SAME_LEAF = 0.35  # next item: a fresh pick in the same leaf (the rest switch leaf)
N_NEIGHBOURS = 8
NEIGHBOUR_DECAY = 0.6  # the j-th nearest neighbour is picked with weight decay ** j
NOVELTY_BOOST = 0.5  # extra log popularity of new items once they appear
# Funnel steps as (intercept, slope on fit) of a logistic chance, tuned so that about 76% of events
# stay views, 16% end at a click, 5% at the cart and 3% are purchases (fit averages above 0 because
# users mostly shop the categories they like).
CLICK = (-1.5, 0.4)
CART = (-1.3, 0.5)
PURCHASE = (-1.6, 0.6)
PROMOTION_LIFT = 0.5  # extra purchase log-odds on the promotion day
FIT_PRICE_WEIGHT = 0.5
FIT_TASTE_WEIGHT = 0.3


@dataclass(frozen=True)
class SessionEvents:
    """Simulated events in generation order (session by session), with their sessions.

    Attributes:
        user, item, timestamp, event, price: one entry per event.
        session: the session of each event.
        session_user, session_first_event, session_after_drift: one entry per session.
    """

    user: np.ndarray
    item: np.ndarray
    timestamp: np.ndarray
    event: np.ndarray
    price: np.ndarray
    session: np.ndarray
    session_user: np.ndarray
    session_first_event: np.ndarray
    session_after_drift: np.ndarray


class ItemSampler:
    """Draws an item of a leaf with chance proportional to its utility for a price-sensitivity level.

    One cumulative table per (phase, level) is laid end to end: row ``r`` maps leaf ``l`` onto the
    interval ``[r * n_leaves + l, r * n_leaves + l + 1]``, so a single ``searchsorted`` serves every
    draw. Before the drift (phase 0) new items have zero weight; after it they get a novelty boost.
    """

    def __init__(self, shop: ShopCatalog, drift: ShopDrift) -> None:
        self._n_leaves = shop.n_leaves
        self._n_levels = len(PRICE_SENSITIVITY_LEVELS)
        self._order = np.argsort(shop.leaf, kind="stable")
        leaf = shop.leaf[self._order]
        leaf_end = np.cumsum(np.bincount(leaf, minlength=self._n_leaves))
        rows = []
        for phase in (0, 1):
            available = (~drift.new_item if phase == 0 else np.ones_like(drift.new_item))[self._order]
            boost = NOVELTY_BOOST * drift.new_item[self._order] * phase
            for row, level in enumerate(PRICE_SENSITIVITY_LEVELS, start=phase * self._n_levels):
                score = shop.popularity[self._order] + boost - level * shop.log_price_centred[self._order]
                weight = np.exp(score - score.max()) * available
                total = np.cumsum(weight)
                before = np.concatenate([[0.0], total[leaf_end[:-1] - 1]])
                within = total - before[leaf]
                # x / x is exactly 1, so every leaf's interval ends exactly on the next integer.
                rows.append(row * self._n_leaves + leaf + within / within[leaf_end - 1][leaf])
        self._table = np.concatenate(rows)

    def draw(self, leaf: np.ndarray, level: np.ndarray, phase: np.ndarray, u: np.ndarray) -> np.ndarray:
        """One item per row; ``u`` are uniforms in ``[0, 1)``."""
        row = phase * self._n_levels + level
        # Shrinking u keeps base + u below base + 1 after rounding, i.e. inside the leaf's interval.
        position = np.searchsorted(self._table, row * self._n_leaves + leaf + u * (1.0 - 1e-12), side="right")
        items: np.ndarray = self._order[position - row * len(self._order)]
        return items


def simulate_sessions(
    config: ShopSimConfig, shop: ShopCatalog, users: ShopUsers, drift: ShopDrift, rng: np.random.Generator
) -> SessionEvents:
    """Lay out sessions, time them, walk through the catalogue and run every event through the funnel."""
    user = np.repeat(np.arange(config.n_users, dtype=np.int64), users.n_events)
    opens = rng.random(len(user)) < SESSION_BREAK
    opens[np.concatenate([[0], np.cumsum(users.n_events)[:-1]])] = True  # each user's first event
    session = np.cumsum(opens) - 1
    first_event = np.flatnonzero(opens)
    session_user = user[first_event]

    starts = draw_session_starts(config, len(first_event), rng)
    timestamp = starts[session] + draw_event_offsets(session, first_event, rng)
    after_drift = (starts >= drift.time).astype(np.int64)
    intent = users.draw_leaf(session_user, after_drift, rng.random(len(first_event)))

    item, leaf = _walk(shop, users, drift, rng, user, session, first_event, after_drift, intent)
    factor = drift.price_factor(leaf, timestamp)
    day = (timestamp - config.start_date) // SECONDS_PER_DAY
    promotion = (
        np.zeros(len(user), dtype=bool) if config.promotion_day is None else day == config.promotion_day
    )
    sensitivity = users.price_sensitivity[user]
    taste = users.taste[after_drift[session], user, leaf]
    fit = (
        shop.quality[item]
        - FIT_PRICE_WEIGHT * sensitivity * shop.log_price_centred[item]
        + FIT_TASTE_WEIGHT * np.clip(np.log(shop.n_leaves * taste), -3.0, 2.0)
    )
    purchase_shift = PROMOTION_LIFT * promotion - sensitivity * np.log(factor)
    event = _funnel(fit, purchase_shift, rng.random((len(user), 3)))
    # Unshocked prices are copied, not recomputed, so they equal the catalogue price bit for bit.
    price = np.where(factor == 1.0, shop.price[item], np.round(shop.price[item] * factor, 2))
    return SessionEvents(user, item, timestamp, event, price, session, session_user, first_event,
                         after_drift.astype(bool))  # fmt: skip


def _walk(
    shop: ShopCatalog,
    users: ShopUsers,
    drift: ShopDrift,
    rng: np.random.Generator,
    user: np.ndarray,
    session: np.ndarray,
    first_event: np.ndarray,
    after_drift: np.ndarray,
    intent: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Item and leaf of every event, position by position across all sessions at once."""
    n = len(user)
    # All randomness is drawn up front, one number per event and purpose, so that which branch an
    # event takes never changes what the next events draw.
    action, u_item, u_leaf = rng.random(n), rng.random(n), rng.random(n)
    decay = NEIGHBOUR_DECAY ** np.arange(N_NEIGHBOURS)
    slot = rng.choice(N_NEIGHBOURS, size=n, p=decay / decay.sum())

    sampler = ItemSampler(shop, drift)
    neighbours = np.stack([neighbour_table(shop, ~drift.new_item, N_NEIGHBOURS),
                           neighbour_table(shop, np.ones_like(drift.new_item), N_NEIGHBOURS)])  # fmt: skip
    phase = after_drift[session]
    level = users.price_level[user]
    position = np.arange(n) - first_event[session]
    by_position = np.argsort(position, kind="stable")
    bounds = np.searchsorted(position[by_position], np.arange(position.max() + 2))

    item = np.empty(n, dtype=np.int64)
    leaf = np.empty(n, dtype=np.int64)
    for k in range(len(bounds) - 1):  # session positions: a few dozen iterations
        at = by_position[bounds[k] : bounds[k + 1]]
        if k == 0:
            leaf[at] = intent[session[at]]
            item[at] = sampler.draw(leaf[at], level[at], phase[at], u_item[at])
            continue
        previous = at - 1
        switch = action[at] >= P_NEIGHBOUR + P_SAME_LEAF
        leaf[at] = leaf[previous]
        leaf[at[switch]] = users.draw_leaf(user[at[switch]], phase[at[switch]], u_leaf[at[switch]])
        fresh = sampler.draw(leaf[at], level[at], phase[at], u_item[at])
        near = neighbours[phase[at], item[previous], slot[at]]
        item[at] = np.where(action[at] < P_NEIGHBOUR, near, fresh)
    return item, leaf


def _funnel(fit: np.ndarray, purchase_shift: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Deepest funnel step (EventType value) each event reaches; ``u`` holds three uniforms per event."""
    click = u[:, 0] < _logistic(CLICK[0] + CLICK[1] * fit)
    cart = click & (u[:, 1] < _logistic(CART[0] + CART[1] * fit))
    purchase = cart & (u[:, 2] < _logistic(PURCHASE[0] + PURCHASE[1] * fit + purchase_shift))
    return (click.astype(np.int8) + cart + purchase).astype(np.int8)


def _logistic(x: np.ndarray) -> np.ndarray:
    chance: np.ndarray = 1.0 / (1.0 + np.exp(-x))
    return chance
