"""Categories, products and reviews, with the rules that guard them."""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from domain.errors import RuleViolation
from domain.money import CENT, validate_price

NAME_MAX = 200
DESCRIPTION_MAX = 10_000
COMMENT_MAX = 5_000
CATEGORY_NAME_MAX = 100
URL_MAX = 2_048
_URL_RE = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)


def slugify(name: str) -> str:
    """ASCII, lower-case, hyphen-separated slug; never empty."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[:80].strip("-") or "category"


def unique_slug(base: str, taken: Iterable[str]) -> str:
    """``base``, or the first of ``base-2``, ``base-3``, ... that nobody uses yet."""
    used = set(taken)
    if base not in used:
        return base
    n = 2
    while f"{base}-{n}" in used:
        n += 1
    return f"{base}-{n}"


def slug_belongs_to(slug: str, base: str) -> bool:
    """Whether ``slug`` is ``base`` or one of its de-duplicated forms (``base-2``, ...)."""
    if slug == base:
        return True
    head, _, tail = slug.rpartition("-")
    return head == base and tail.isdigit()


def validate_category_name(value: str) -> str:
    return validate_text(value, field="name", min_len=1, max_len=CATEGORY_NAME_MAX)


def validate_comment(value: str) -> str:
    return validate_text(value, field="comment", min_len=0, max_len=COMMENT_MAX)


def descendants(parents: Mapping[uuid.UUID, uuid.UUID | None], root: uuid.UUID) -> set[uuid.UUID]:
    """``root`` and every category below it (a tree given as child -> parent links)."""
    children: dict[uuid.UUID, list[uuid.UUID]] = {}
    for child, parent in parents.items():
        if parent is not None:
            children.setdefault(parent, []).append(child)
    found = {root}
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def creates_cycle(
    parents: Mapping[uuid.UUID, uuid.UUID | None], category_id: uuid.UUID, new_parent: uuid.UUID | None
) -> bool:
    """Whether hanging ``category_id`` under ``new_parent`` would make it its own ancestor."""
    seen: set[uuid.UUID] = set()
    node = new_parent
    while node is not None and node not in seen:
        if node == category_id:
            return True
        seen.add(node)
        node = parents.get(node)
    return node is not None  # an existing loop (should never be stored) counts as a cycle too


def subtree_totals(parents: Mapping[uuid.UUID, uuid.UUID | None], own: Mapping[uuid.UUID, int]) -> dict[uuid.UUID, int]:
    """Each category's own count plus the counts of all its sub-categories."""
    totals = {category: own.get(category, 0) for category in parents}
    for category, count in own.items():
        if not count or category not in parents:
            continue
        seen = {category}
        node = parents[category]
        while node is not None and node not in seen:
            totals[node] = totals.get(node, 0) + count
            seen.add(node)
            node = parents.get(node)
    return totals


def rating_average(rating_sum: int, review_count: int) -> Decimal | None:
    """Mean rating to the cent (half up), the same rounding the databases apply; None without reviews."""
    if review_count <= 0:
        return None
    return (Decimal(rating_sum) / Decimal(review_count)).quantize(CENT, rounding=ROUND_HALF_UP)


def validate_text(value: str, *, field: str, min_len: int, max_len: int) -> str:
    if "\x00" in value:
        raise RuleViolation("Text may not contain NUL characters.", field=field)
    text = value.strip()
    if not min_len <= len(text) <= max_len:
        raise RuleViolation(f"Must be {min_len}–{max_len} characters.", field=field)
    return text


def validate_image_url(value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) > URL_MAX or "\x00" in value or not _URL_RE.fullmatch(value):
        raise RuleViolation("image_url must be an http(s) URL or null.", field="image_url")
    return value


def validate_stock(value: int) -> int:
    if value < 0 or value > 1_000_000_000:
        raise RuleViolation("Stock must be between 0 and 1000000000.", field="stock")
    return value


def validate_rating(value: int) -> int:
    if not 1 <= value <= 5:
        raise RuleViolation("Rating must be an integer from 1 to 5.", field="rating")
    return value


@dataclass(slots=True)
class Category:
    id: uuid.UUID
    name: str
    slug: str
    parent_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


@dataclass(slots=True)
class Product:
    id: uuid.UUID
    seller_id: uuid.UUID
    category_id: uuid.UUID | None  # None: uncategorised
    name: str
    description: str
    price: Decimal
    image_url: str | None
    stock: int
    created_at: datetime
    updated_at: datetime
    rating_avg: Decimal | None = None
    review_count: int = 0
    favorite_count: int = 0
    withdrawn_at: datetime | None = None
    # The running total behind rating_avg; reviews change it arithmetically, never by recount.
    rating_sum: int = 0

    def may_be_changed_by(self, user_id: uuid.UUID, *, is_admin: bool) -> bool:
        return is_admin or user_id == self.seller_id

    @staticmethod
    def checked(
        name: str, description: str, price: Decimal | str, image_url: str | None, stock: int
    ) -> tuple[str, str, Decimal, str | None, int]:
        """Validate the writable fields together so one call reports the first broken rule."""
        return (
            validate_text(name, field="name", min_len=1, max_len=NAME_MAX),
            validate_text(description, field="description", min_len=0, max_len=DESCRIPTION_MAX),
            validate_price(price),
            validate_image_url(image_url),
            validate_stock(stock),
        )


@dataclass(slots=True)
class Review:
    id: uuid.UUID
    product_id: uuid.UUID
    author_id: uuid.UUID
    rating: int
    comment: str
    verified_purchase: bool
    created_at: datetime
    updated_at: datetime


@dataclass(slots=True)
class Favorite:
    id: uuid.UUID
    user_id: uuid.UUID
    product_id: uuid.UUID
    created_at: datetime
