"""Hypothesis strategies shared by the recommender's property tests."""

from __future__ import annotations

from hypothesis import strategies as st

from application.recommendations.feed import UserInteraction
from application.recommendations.model import SECONDS_PER_DAY


def user_interactions(
    items: st.SearchStrategy[str], *, now: float, max_size: int
) -> st.SearchStrategy[list[UserInteraction]]:
    """A user's signals of any kind on ``items``, from 400 days before ``now`` to a day after."""
    return st.lists(
        st.builds(
            UserInteraction,
            item=items,
            kind=st.sampled_from(["favorite", "purchase", "review"]),
            ts=st.floats(min_value=now - 400 * SECONDS_PER_DAY, max_value=now + SECONDS_PER_DAY),
        ),
        max_size=max_size,
    )
