"""Recommendation reads and the model store on SQL (Postgres and SQLite, Core statements).

The neighbour table holds one row per product; its ``neighbours`` value packs the product's
neighbour list best first: n product ids (16 bytes each, big-endian) followed by n scores
(little-endian float64), so n = len // 24. A refresh writes ~100k such rows at 100k products
(pair rows were ~5M and took minutes to rewrite with their indexes); a feed request reads one
row per product the user touched.

A refresh replaces everything in one transaction (delete, then batched multi-row inserts), so
readers see the old model until it commits (MVCC on Postgres, WAL snapshots on SQLite). On
Postgres, a ``SHARE ROW EXCLUSIVE`` lock makes two refreshes take turns without blocking reads;
on SQLite the process-wide write lock does. Reads are single statements (``read_engine``: no
BEGIN/ROLLBACK round trips on Postgres), each seeing one committed model.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import AsyncIterator, Collection, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, cast

import anyio.to_thread
import msgspec
import numpy as np
import polars as pl
from sqlalchemy import any_, bindparam, delete, exists, func, insert, literal, or_, select, text, union, union_all
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.sql.database import Database
from adapters.sql.tables import (
    CategoryRow,
    FavoriteRow,
    FeedRankingRow,
    ItemNeighbourRow,
    OrderLineRow,
    OrderRow,
    PopularItemRow,
    ProductRow,
    ReviewRow,
    table_of,
)
from application.ports.recommendations import (
    GOOD_REVIEW_RATING,
    CoInteractions,
    Interaction,
    PopularItem,
    PopularScore,
    RecentInteraction,
)
from application.recommendations.feed import InteractionKind
from application.views.recommendations import Ranked
from domain.ids import new_id
from domain.orders import OrderStatus

P = table_of(ProductRow)
C = table_of(CategoryRow)
F = table_of(FavoriteRow)
R = table_of(ReviewRow)
O = table_of(OrderRow)  # noqa: E741 - the orders table, as in the other adapters
OL = table_of(OrderLineRow)
N = table_of(ItemNeighbourRow)
POP = table_of(PopularItemRow)
FR = table_of(FeedRankingRow)

_ID_BYTES, _SCORE_BYTES = 16, 8
_ENTRY_BYTES = _ID_BYTES + _SCORE_BYTES
_PACK_CHUNK_ITEMS = 2_000
INSERT_BATCH = 1_000


def pack_neighbours(neighbours: Mapping[str, Sequence[tuple[str, float]]]) -> list[tuple[uuid.UUID, bytes]]:
    """``(product id, packed neighbour list)`` per product.

    Vectorised per chunk of items (one hex decode for all of a chunk's ids): packing 5M pairs
    takes a few seconds, not minutes; callers run it in a thread.
    """
    table = pl.DataFrame(
        {
            "item": [item for item, pairs in neighbours.items() for _ in pairs],
            "neighbour": [neighbour for pairs in neighbours.values() for neighbour, _ in pairs],
            "score": [score for pairs in neighbours.values() for _, score in pairs],
        },
        schema={"item": pl.String, "neighbour": pl.String, "score": pl.Float64},
    )
    if table.is_empty():
        return []
    table = table.sort("item", maintain_order=True)  # each item's rows together, in their order
    counts = table.group_by("item", maintain_order=True).len()
    items = counts.get_column("item").to_list()
    starts = np.concatenate([[0], np.cumsum(counts.get_column("len").to_numpy())])
    scores = table.get_column("score").cast(pl.Float64).to_numpy().astype("<f8")
    packed: list[tuple[uuid.UUID, bytes]] = []
    for first in range(0, len(items), _PACK_CHUNK_ITEMS):
        last = min(first + _PACK_CHUNK_ITEMS, len(items))
        offset = int(starts[first])
        hexes = table.get_column("neighbour").slice(offset, int(starts[last]) - offset)
        ids = bytes.fromhex(hexes.str.replace_all("-", "", literal=True).str.join("").item())
        for k in range(first, last):
            start, stop = int(starts[k]), int(starts[k + 1])
            blob = ids[(start - offset) * _ID_BYTES : (stop - offset) * _ID_BYTES] + scores[start:stop].tobytes()
            packed.append((uuid.UUID(items[k]), blob))
    return packed


def unpack_neighbours(blob: bytes) -> list[tuple[str, float]]:
    """A packed list as ``(canonical product id, score)`` pairs, best first."""
    n = len(blob) // _ENTRY_BYTES
    hexes = blob[: n * _ID_BYTES].hex()
    scores = struct.unpack_from(f"<{n}d", blob, n * _ID_BYTES)
    pairs = []
    for i in range(n):
        h = hexes[32 * i : 32 * i + 32]
        pairs.append((f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}", scores[i]))
    return pairs


def _batches(rows: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _among(db: Database, column: Any, ids: Collection[uuid.UUID]) -> Any:
    """``column IN ids``; on Postgres as ``= ANY($1::uuid[])``: one parameter, so the statement's
    text (and its prepared plan) is the same whatever the number of ids."""
    if db.is_postgres:
        return column == any_(bindparam(None, list(ids), type_=postgresql.ARRAY(postgresql.UUID(as_uuid=True))))
    return column.in_(list(ids))


def _live() -> Any:
    return P.c.withdrawn_at.is_(None).label("live")


def _placed() -> Any:
    return O.c.status == OrderStatus.PLACED.value


def _signals() -> Any:
    """``user_id, product_id, at`` of every favorite, line of a placed order and good review."""
    return union_all(
        select(F.c.user_id.label("user_id"), F.c.product_id.label("product_id"), F.c.created_at.label("at")),
        select(OL.c.buyer_id, OL.c.product_id, OL.c.created_at)
        .select_from(OL.join(O, O.c.id == OL.c.order_id))
        .where(_placed(), OL.c.buyer_id.is_not(None)),
        select(R.c.author_id, R.c.product_id, R.c.created_at).where(R.c.rating >= GOOD_REVIEW_RATING),
    ).subquery("signals")


def pack_list(neighbours: Sequence[tuple[uuid.UUID, float]]) -> bytes:
    """One neighbour list in the packed format (ids, then little-endian float64 scores)."""
    ids = b"".join(product_id.bytes for product_id, _ in neighbours)
    return ids + np.asarray([score for _, score in neighbours], dtype="<f8").tobytes()


class SqlInteractionSource:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def all_interactions(self, *, batch_size: int = 20_000) -> AsyncIterator[list[Interaction]]:
        favorites = select(
            F.c.user_id.label("user_id"),
            F.c.product_id.label("product_id"),
            literal("favorite").label("kind"),
            F.c.created_at.label("at"),
            P.c.category_id,
            _live(),
        ).select_from(F.join(P, P.c.id == F.c.product_id))
        purchases = (
            select(OL.c.buyer_id, OL.c.product_id, literal("purchase"), OL.c.created_at, P.c.category_id, _live())
            .select_from(OL.join(O, O.c.id == OL.c.order_id).join(P, P.c.id == OL.c.product_id))
            .where(_placed(), OL.c.buyer_id.is_not(None))
        )
        reviews = (
            select(R.c.author_id, R.c.product_id, literal("review"), R.c.created_at, P.c.category_id, _live())
            .select_from(R.join(P, P.c.id == R.c.product_id))
            .where(R.c.rating >= GOOD_REVIEW_RATING)
        )
        query = union_all(favorites, purchases, reviews)
        # A server-side cursor lives in a transaction: ``engine``, not the autocommit ``read_engine``.
        async with self.db.engine.connect() as conn:
            result = await conn.stream(query.execution_options(yield_per=batch_size))
            async for partition in result.partitions(batch_size):
                yield [
                    Interaction(
                        row.user_id,
                        row.product_id,
                        cast(InteractionKind, row.kind),
                        row.at,
                        row.category_id,
                        bool(row.live),
                    )
                    for row in partition
                ]

    async def recent_interactions(self, user_id: uuid.UUID, *, limit: int = 200) -> list[RecentInteraction]:
        # Each branch takes its own newest ``limit`` through its index, then the union is cut again.
        favorites = (
            select(F.c.product_id.label("product_id"), literal("favorite").label("kind"), F.c.created_at.label("at"))
            .where(F.c.user_id == user_id)
            .order_by(F.c.created_at.desc())
            .limit(limit)
            .subquery()
        )
        purchases = (
            select(OL.c.product_id, literal("purchase").label("kind"), OL.c.created_at.label("at"))
            .select_from(OL.join(O, O.c.id == OL.c.order_id))
            .where(OL.c.buyer_id == user_id, _placed())
            .order_by(OL.c.created_at.desc())
            .limit(limit)
            .subquery()
        )
        reviews = (
            select(R.c.product_id, literal("review").label("kind"), R.c.created_at.label("at"))
            .where(R.c.author_id == user_id, R.c.rating >= GOOD_REVIEW_RATING)
            .order_by(R.c.created_at.desc())
            .limit(limit)
            .subquery()
        )
        signals = union_all(*(select(s.c.product_id, s.c.kind, s.c.at) for s in (favorites, purchases, reviews)))
        merged = signals.subquery()
        stmt = (
            select(merged.c.product_id, merged.c.kind, merged.c.at, P.c.category_id, P.c.name)
            .select_from(merged.join(P, P.c.id == merged.c.product_id))
            .order_by(merged.c.at.desc(), merged.c.product_id, merged.c.kind)
            .limit(limit)
        )
        async with self.db.read_engine.connect() as conn:
            rows = await conn.execute(stmt)
            return [
                RecentInteraction(row.product_id, cast(InteractionKind, row.kind), row.at, row.category_id, row.name)
                for row in rows
            ]

    async def hidden_among(self, user_id: uuid.UUID, product_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
        if not product_ids:
            return set()
        ids = list(product_ids)
        stmt = union(
            select(P.c.id.label("product_id")).where(
                _among(self.db, P.c.id, ids), or_(P.c.seller_id == user_id, P.c.withdrawn_at.is_not(None))
            ),
            select(F.c.product_id).where(F.c.user_id == user_id, _among(self.db, F.c.product_id, ids)),
            select(OL.c.product_id)
            .select_from(OL.join(O, O.c.id == OL.c.order_id))
            .where(OL.c.buyer_id == user_id, _placed(), _among(self.db, OL.c.product_id, ids)),
            select(R.c.product_id).where(R.c.author_id == user_id, _among(self.db, R.c.product_id, ids)),
        )
        async with self.db.read_engine.connect() as conn:
            return {row.product_id for row in await conn.execute(stmt)}

    async def co_interactions(self, product_id: uuid.UUID, *, max_users: int, limit: int) -> CoInteractions:
        signals = _signals()
        mine = (
            select(signals.c.user_id, func.max(signals.c.at).label("at"))
            .where(signals.c.product_id == product_id)
            .group_by(signals.c.user_id)
            .order_by(func.max(signals.c.at).desc(), signals.c.user_id)
            .limit(max_users)
            .subquery("mine")
        )
        others = _signals().alias("others")
        count = func.count(others.c.user_id.distinct())
        stmt = (
            select(others.c.product_id, count.label("n"))
            .select_from(others.join(mine, mine.c.user_id == others.c.user_id).join(P, P.c.id == others.c.product_id))
            .where(others.c.product_id != product_id, P.c.withdrawn_at.is_(None))
            .group_by(others.c.product_id)
            .order_by(count.desc(), others.c.product_id)
            .limit(limit)
        )
        async with self.db.read_engine.connect() as conn:
            users = (await conn.execute(select(func.count()).select_from(mine))).scalar() or 0
            counts = [(row.product_id, int(row.n)) for row in await conn.execute(stmt)] if users else []
        return CoInteractions(int(users), counts)

    async def active_users(self, *, limit: int) -> list[uuid.UUID]:
        signals = _signals()
        newest = func.max(signals.c.at)
        stmt = select(signals.c.user_id).group_by(signals.c.user_id).order_by(newest.desc(), signals.c.user_id)
        async with self.db.read_engine.connect() as conn:
            return [row.user_id for row in await conn.execute(stmt.limit(limit))]

    async def any_interactions(self) -> bool:
        stmt = select(
            or_(
                exists(select(F.c.id)),
                exists(select(OL.c.id).select_from(OL.join(O, O.c.id == OL.c.order_id)).where(_placed())),
                exists(select(R.c.id).where(R.c.rating >= GOOD_REVIEW_RATING)),
            )
        )
        async with self.db.read_engine.connect() as conn:
            return bool((await conn.execute(stmt)).scalar())


@asynccontextmanager
async def _writing(db: Database) -> AsyncIterator[AsyncConnection]:
    """A short write transaction; on SQLite in its bounded turn with the units of work."""
    if db.is_postgres:
        async with db.engine.begin() as conn:
            yield conn
        return
    async with db.write_turn(), db.engine.execution_options(sqlite_begin="IMMEDIATE").begin() as conn:
        yield conn


class SqlNeighbourStore:
    def __init__(self, db: Database, *, insert_batch: int = INSERT_BATCH) -> None:
        self.db = db
        self.insert_batch = insert_batch

    @asynccontextmanager
    async def _replacing(self) -> AsyncIterator[AsyncConnection]:
        """One write transaction; concurrent refreshes take turns, readers never wait."""
        if self.db.is_postgres:
            async with self.db.engine.begin() as conn:
                await conn.execute(text("LOCK TABLE item_neighbours, popular_items IN SHARE ROW EXCLUSIVE MODE"))
                yield conn
            return
        async with self.db.write_turn():
            async with self.db.engine.execution_options(sqlite_begin="IMMEDIATE").begin() as conn:
                yield conn

    async def replace(
        self, neighbours: Mapping[str, Sequence[tuple[str, float]]], popular: Sequence[PopularScore], built_at: datetime
    ) -> None:
        packed = await anyio.to_thread.run_sync(pack_neighbours, neighbours)
        async with self._replacing() as conn:
            await conn.execute(delete(N))
            for batch in _batches(packed, self.insert_batch):
                await conn.execute(
                    insert(N),
                    [
                        {
                            "id": new_id(),
                            "product_id": product_id,
                            "neighbours": blob,
                            "created_at": built_at,
                            "updated_at": built_at,
                        }
                        for product_id, blob in batch
                    ],
                )
            await self._write_popular(conn, popular, built_at)

    async def replace_popular(self, popular: Sequence[PopularScore]) -> None:
        async with self._replacing() as conn:
            await self._write_popular(conn, popular, datetime.now(UTC))

    async def _write_popular(self, conn: AsyncConnection, popular: Sequence[PopularScore], now: datetime) -> None:
        await conn.execute(delete(POP))
        for batch in _batches(popular, self.insert_batch):
            await conn.execute(
                insert(POP),
                [
                    {
                        "id": new_id(),
                        "product_id": item.product_id,
                        "category_id": item.category_id,
                        "score": item.score,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for item in batch
                ],
            )

    async def neighbours(self, product_ids: Collection[uuid.UUID]) -> dict[str, list[tuple[str, float]]]:
        if not product_ids:
            return {}
        stmt = select(N.c.product_id, N.c.neighbours).where(_among(self.db, N.c.product_id, product_ids))
        async with self.db.read_engine.connect() as conn:
            rows = list(await conn.execute(stmt))
        return {str(row.product_id): unpack_neighbours(row.neighbours) for row in rows}

    async def popular(self, *, limit: int, category_ids: Sequence[uuid.UUID] | None = None) -> list[PopularItem]:
        if category_ids is None:
            stmt = (
                select(POP.c.product_id, POP.c.score, POP.c.category_id, C.c.name)
                .select_from(POP.outerjoin(C, C.c.id == POP.c.category_id))  # uncategorised items too
                .order_by(POP.c.score.desc(), POP.c.product_id)
                .limit(limit)
            )
        else:
            if not category_ids:
                return []
            rank = func.row_number().over(
                partition_by=POP.c.category_id, order_by=(POP.c.score.desc(), POP.c.product_id)
            )
            ranked = (
                select(POP.c.product_id, POP.c.score, POP.c.category_id, rank.label("rank"))
                .where(POP.c.category_id.in_(list(category_ids)))
                .subquery()
            )
            stmt = (
                select(ranked.c.product_id, ranked.c.score, ranked.c.category_id, C.c.name)
                .select_from(ranked.join(C, C.c.id == ranked.c.category_id))
                .where(ranked.c.rank <= limit)
                .order_by(ranked.c.score.desc(), ranked.c.product_id)
            )
        async with self.db.read_engine.connect() as conn:
            return [
                PopularItem(row.product_id, row.score, row.category_id, row.name) for row in await conn.execute(stmt)
            ]

    async def built_at(self) -> datetime | None:
        # Every row of a model carries its build time: one row answers (no scan for max()).
        async with self.db.read_engine.connect() as conn:
            value = (await conn.execute(select(N.c.created_at).limit(1))).scalar()
        return cast(datetime | None, value)

    async def set_neighbours(self, product_id: uuid.UUID, neighbours: Sequence[tuple[uuid.UUID, float]]) -> None:
        """An upsert stamped with the model's build time (so ``built_at`` stays the model's).

        On Postgres it waits for a refresh in progress (whose lock conflicts with row writes) and
        lands in the new model; on SQLite the write lock orders them.
        """
        built_at = await self.built_at()
        if built_at is None:  # no model yet: the first refresh is due now and covers this product
            return
        now = datetime.now(UTC)
        values = {
            "id": new_id(),
            "product_id": product_id,
            "neighbours": pack_list(neighbours),
            "created_at": built_at,
            "updated_at": now,
        }
        dialect_insert = postgresql.insert if self.db.is_postgres else sqlite.insert
        stmt = dialect_insert(N).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[N.c.product_id],
            set_={"neighbours": stmt.excluded.neighbours, "updated_at": stmt.excluded.updated_at},
        )
        async with _writing(self.db) as conn:
            await conn.execute(stmt)


_RANKING_CODEC = msgspec.json.Encoder(), msgspec.json.Decoder(list[Ranked])


# The Postgres form of ``SqlRankingStore.fresh``'s statement, prepared once on the raw pool.
FRESH_RANKING_SQL = (
    "SELECT r.ranking FROM feed_rankings r WHERE r.user_id = $1"
    " AND NOT EXISTS (SELECT 1 FROM favorites f WHERE f.user_id = $1 AND f.created_at >= r.updated_at)"
    " AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.buyer_id = $1 AND o.updated_at >= r.updated_at)"
    " AND NOT EXISTS (SELECT 1 FROM reviews v WHERE v.author_id = $1 AND v.updated_at >= r.updated_at)"
    " AND NOT EXISTS (SELECT 1 FROM (SELECT created_at FROM item_neighbours LIMIT 1) m"
    " WHERE m.created_at > r.updated_at)"
)


class SqlRankingStore:
    """``feed_rankings``: one row per user; a read is one statement with its freshness checks
    (on Postgres a prepared statement on the raw asyncpg pool, as the other hot reads)."""

    def __init__(self, db: Database, *, insert_batch: int = INSERT_BATCH) -> None:
        self.db = db
        self.insert_batch = insert_batch

    async def put_many(self, rankings: Sequence[tuple[uuid.UUID, list[Ranked]]], computed_at: datetime) -> None:
        dialect_insert = postgresql.insert if self.db.is_postgres else sqlite.insert
        for batch in _batches(rankings, self.insert_batch):
            rows = [
                {
                    "id": new_id(),
                    "user_id": user_id,
                    "ranking": _RANKING_CODEC[0].encode(ranking),
                    "created_at": computed_at,
                    "updated_at": computed_at,
                }
                for user_id, ranking in batch
            ]
            stmt = dialect_insert(FR)
            stmt = stmt.on_conflict_do_update(
                index_elements=[FR.c.user_id],
                set_={"ranking": stmt.excluded.ranking, "updated_at": stmt.excluded.updated_at},
            )
            async with _writing(self.db) as conn:
                await conn.execute(stmt, rows)

    async def fresh(self, user_id: uuid.UUID) -> list[Ranked] | None:
        if self.db.reads is not None:
            row = await self.db.reads.fetchrow(FRESH_RANKING_SQL, user_id)
            return _decode_ranking(row[0] if row is not None else None)
        return _decode_ranking(await self._fresh_blob(user_id))

    async def _fresh_blob(self, user_id: uuid.UUID) -> bytes | None:
        # A signal at the very instant of the computation may have been missed; a model built
        # then was not (a refresh takes its build time before it primes).
        signals = [
            select(func.max(F.c.created_at)).where(F.c.user_id == user_id).scalar_subquery(),
            select(func.max(O.c.updated_at)).where(O.c.buyer_id == user_id).scalar_subquery(),
            select(func.max(R.c.updated_at)).where(R.c.author_id == user_id).scalar_subquery(),
        ]
        model = select(N.c.created_at).limit(1).scalar_subquery()
        stmt = select(FR.c.ranking).where(
            FR.c.user_id == user_id,
            *(or_(signal.is_(None), signal < FR.c.updated_at) for signal in signals),
            or_(model.is_(None), model <= FR.c.updated_at),
        )
        async with self.db.read_engine.connect() as conn:
            return cast(bytes | None, (await conn.execute(stmt)).scalar())


def _decode_ranking(blob: bytes | None) -> list[Ranked] | None:
    if blob is None:
        return None
    try:
        return _RANKING_CODEC[1].decode(blob)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None  # an older format: recomputed
