"""Categories, products and reviews, with the rules that guard them."""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from domain.errors import RuleViolation
from domain.money import validate_price

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
    if len(value) > URL_MAX or not _URL_RE.fullmatch(value):
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
    category_id: uuid.UUID
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
