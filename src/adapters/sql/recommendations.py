"""Recommendation reads and the model store on SQL (Postgres and SQLite; ``statements.recommendations``).

The neighbour table holds one row per product; its ``neighbours`` value packs the product's
neighbour list best first: n product ids (16 bytes each, big-endian) followed by n scores
(little-endian float64), so n = len // 24. A refresh writes ~100k such rows at 100k products
(pair rows were ~5M and took minutes to rewrite with their indexes); a feed request reads one
row per product the user touched.

A refresh replaces everything in one transaction (delete, then batched inserts), so readers see
the old model until it commits (MVCC on Postgres, WAL snapshots on SQLite). On Postgres a
``SHARE ROW EXCLUSIVE`` lock makes two refreshes take turns without blocking reads; on SQLite the
writers' turn does. Reads are single statements (``Database.reads``), each seeing one committed model.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import AsyncIterator, Collection, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import anyio.to_thread
import msgspec
import numpy as np

from adapters.sql.database import Database
from adapters.sql.executor import Executor
from adapters.sql.mapping import row_mapper
from adapters.sql.statements import recommendations as sql
from application.ports.recommendations import (
    CoInteractions,
    FittedModel,
    Interaction,
    ItemFactors,
    NeighbourTable,
    PopularItem,
    PopularScore,
    RecentInteraction,
)
from application.recommendations.factors import stdlib_array
from application.views.recommendations import Ranked
from domain.ids import new_id

_ID_BYTES, _SCORE_BYTES = 16, 8
_ENTRY_BYTES = _ID_BYTES + _SCORE_BYTES
_PACK_CHUNK_ITEMS = 2_000
INSERT_BATCH = 1_000
_FIRST_KEY = uuid.UUID(int=0)


def pack_neighbours(table: NeighbourTable) -> list[tuple[uuid.UUID, bytes]]:
    """``(product id, packed neighbour list)`` per product with neighbours.

    Vectorised: every id is parsed once and the neighbour ids are gathered in one array
    operation, so packing 5M pairs takes seconds; callers run it in a thread.
    """
    if not table.items:
        return []
    ids = np.frombuffer(b"".join(uuid.UUID(item).bytes for item in table.items), dtype=np.uint8).reshape(-1, _ID_BYTES)
    offsets = np.frombuffer(table.offsets, dtype=np.int64)
    neighbour_ids = ids[np.frombuffer(table.neighbours, dtype=np.int64)].tobytes()
    scores = np.frombuffer(table.scores, dtype=np.float64).astype("<f8")
    packed: list[tuple[uuid.UUID, bytes]] = []
    for i in np.flatnonzero(offsets[1:] > offsets[:-1]):
        start, stop = int(offsets[i]), int(offsets[i + 1])
        blob = neighbour_ids[start * _ID_BYTES : stop * _ID_BYTES] + scores[start:stop].tobytes()
        packed.append((uuid.UUID(bytes=ids[i].tobytes()), blob))
    return packed


def _canonical_ids(packed: bytes) -> list[str]:
    """Product ids packed 16 bytes each, as canonical strings (without a UUID object per id)."""
    hexes = packed.hex()
    return [
        f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
        for h in (hexes[start : start + 32] for start in range(0, len(hexes), 32))
    ]


def unpack_neighbours(blob: bytes) -> list[tuple[str, float]]:
    """A packed list as ``(canonical product id, score)`` pairs, best first."""
    n = len(blob) // _ENTRY_BYTES
    scores = struct.unpack_from(f"<{n}d", blob, n * _ID_BYTES)
    return list(zip(_canonical_ids(blob[: n * _ID_BYTES]), scores, strict=True))


def pack_list(neighbours: Sequence[tuple[uuid.UUID, float]]) -> bytes:
    """One neighbour list in the packed format (ids, then little-endian float64 scores)."""
    ids = b"".join(product_id.bytes for product_id, _ in neighbours)
    return ids + np.asarray([score for _, score in neighbours], dtype="<f8").tobytes()


class _PackedFactors(msgspec.Struct, array_like=True):
    """``ItemFactors`` as stored: product ids 16 bytes each, arrays as little-endian bytes, and
    the scalars under their own names."""

    items: bytes
    vectors: bytes  # float32
    idf: bytes  # float64
    rank: int
    mean_length: float
    regularization: float
    alpha: float
    bm25_k1: float
    bm25_b: float


_FACTOR_SCALARS = ("rank", "mean_length", "regularization", "alpha", "bm25_k1", "bm25_b")
_FACTORS_CODEC = msgspec.msgpack.Encoder(), msgspec.msgpack.Decoder(_PackedFactors)


def pack_factors(factors: ItemFactors) -> bytes:
    """The factors as one msgpack value (tens of megabytes at most: ``als_max_items`` bounds them)."""
    return _FACTORS_CODEC[0].encode(
        _PackedFactors(
            items=b"".join(uuid.UUID(item).bytes for item in factors.items),
            vectors=np.frombuffer(factors.vectors, dtype=np.float32).astype("<f4").tobytes(),
            idf=np.frombuffer(factors.idf, dtype=np.float64).astype("<f8").tobytes(),
            **{name: getattr(factors, name) for name in _FACTOR_SCALARS},
        )
    )


def unpack_factors(blob: bytes) -> ItemFactors:
    packed = _FACTORS_CODEC[1].decode(blob)
    return ItemFactors(
        items=_canonical_ids(packed.items),
        vectors=stdlib_array("f", np.frombuffer(packed.vectors, dtype="<f4").astype(np.float32)),
        idf=stdlib_array("d", np.frombuffer(packed.idf, dtype="<f8").astype(np.float64)),
        **{name: getattr(packed, name) for name in _FACTOR_SCALARS},
    )


def _batches(rows: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


_interaction = row_mapper(Interaction, derived={"live": lambda row: bool(row["live"])})
_recent = row_mapper(RecentInteraction)
_popular = row_mapper(PopularItem)


class SqlInteractionSource:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def all_interactions(self, *, batch_size: int = 20_000) -> AsyncIterator[list[Interaction]]:
        for statement in sql.ALL_INTERACTIONS.values():
            after = _FIRST_KEY
            while True:
                rows = await self.db.reads.rows(statement, after_key=after, limit=batch_size)
                if rows:
                    yield [_interaction(row) for row in rows]
                if len(rows) < batch_size:
                    break
                after = rows[-1]["key"]

    async def recent_interactions(self, user_id: uuid.UUID, *, limit: int = 200) -> list[RecentInteraction]:
        rows = await self.db.reads.rows(sql.RECENT_INTERACTIONS, user_id=user_id, limit=limit)
        return [_recent(row) for row in rows]

    async def hidden_among(self, user_id: uuid.UUID, product_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
        if not product_ids:
            return set()
        rows = await self.db.reads.rows(sql.HIDDEN_AMONG, user_id=user_id, product_ids=list(product_ids))
        return {row["product_id"] for row in rows}

    async def co_interactions(self, product_id: uuid.UUID, *, max_users: int, limit: int) -> CoInteractions:
        users = await self.db.reads.value(sql.CO_USERS, product_id=product_id, max_users=max_users) or 0
        if not users:
            return CoInteractions(0, [])
        rows = await self.db.reads.rows(sql.CO_INTERACTIONS, product_id=product_id, max_users=max_users, limit=limit)
        return CoInteractions(int(users), [(row["product_id"], int(row["users"])) for row in rows])

    async def active_users(self, *, limit: int) -> list[uuid.UUID]:
        return [row["user_id"] for row in await self.db.reads.rows(sql.ACTIVE_USERS, limit=limit)]

    async def any_interactions(self) -> bool:
        return bool(await self.db.reads.value(sql.ANY_INTERACTIONS))


class SqlNeighbourStore:
    def __init__(self, db: Database, *, insert_batch: int = INSERT_BATCH) -> None:
        self.db = db
        self.insert_batch = insert_batch

    async def _lock_model(self, executor: Executor) -> None:
        """Concurrent refreshes take turns; readers never wait (SQLite: the writers' turn already)."""
        if self.db.is_postgres:
            await executor.run(sql.LOCK_MODEL)

    async def replace(self, model: FittedModel) -> None:
        built_at = model.built_at
        packed = await anyio.to_thread.run_sync(pack_neighbours, model.neighbours)
        factors = model.factors
        packed_factors = await anyio.to_thread.run_sync(pack_factors, factors) if factors is not None else None
        async with self.db.write() as executor:
            await self._lock_model(executor)
            await executor.run(sql.DELETE_FACTORS)
            if packed_factors is not None:
                await executor.run(
                    sql.INSERT_FACTORS, id=new_id(), model=packed_factors, created_at=built_at, updated_at=built_at
                )
            await executor.run(sql.DELETE_NEIGHBOURS)
            for batch in _batches(packed, self.insert_batch):
                rows = [
                    {
                        "id": new_id(),
                        "product_id": product_id,
                        "neighbours": blob,
                        "created_at": built_at,
                        "updated_at": built_at,
                    }
                    for product_id, blob in batch
                ]
                await executor.run_many(sql.INSERT_NEIGHBOURS, rows)
            await self._write_popular(executor, model.popular, built_at)

    async def replace_popular(self, popular: Sequence[PopularScore]) -> None:
        async with self.db.write() as executor:
            await self._lock_model(executor)
            await self._write_popular(executor, popular, datetime.now(UTC))

    async def _write_popular(self, executor: Executor, popular: Sequence[PopularScore], now: datetime) -> None:
        await executor.run(sql.DELETE_POPULAR)
        for batch in _batches(popular, self.insert_batch):
            rows = [
                {
                    "id": new_id(),
                    "product_id": item.product_id,
                    "category_id": item.category_id,
                    "score": item.score,
                    "created_at": now,
                    "updated_at": now,
                }
                for item in batch
            ]
            await executor.run_many(sql.INSERT_POPULAR, rows)

    async def neighbours(self, product_ids: Collection[uuid.UUID]) -> dict[str, list[tuple[str, float]]]:
        if not product_ids:
            return {}
        rows = await self.db.reads.rows(sql.NEIGHBOURS_OF, product_ids=list(product_ids))
        return {str(row["product_id"]): unpack_neighbours(row["neighbours"]) for row in rows}

    async def factors(self) -> ItemFactors | None:
        blob = await self.db.reads.value(sql.FACTORS)
        return await anyio.to_thread.run_sync(unpack_factors, blob) if blob is not None else None

    async def popular(self, *, limit: int, category_ids: Sequence[uuid.UUID] | None = None) -> list[PopularItem]:
        if category_ids is None:
            rows = await self.db.reads.rows(sql.POPULAR, limit=limit)
        elif not category_ids:
            return []
        else:
            rows = await self.db.reads.rows(sql.POPULAR_IN, category_ids=list(category_ids), limit=limit)
        return [_popular(row) for row in rows]

    async def built_at(self) -> datetime | None:
        return cast(datetime | None, await self.db.reads.value(sql.MODEL_BUILT_AT))

    async def set_neighbours(self, product_id: uuid.UUID, neighbours: Sequence[tuple[uuid.UUID, float]]) -> None:
        """An upsert stamped with the model's build time (so ``built_at`` stays the model's).

        On Postgres it waits for a refresh in progress (whose lock conflicts with row writes) and
        lands in the new model; on SQLite the writers' turn orders them.
        """
        built_at = await self.built_at()
        if built_at is None:  # no model yet: the first refresh is due now and covers this product
            return
        async with self.db.write() as executor:
            await executor.run(
                sql.SET_NEIGHBOURS,
                id=new_id(),
                product_id=product_id,
                neighbours=pack_list(neighbours),
                created_at=built_at,
                updated_at=datetime.now(UTC),
            )


_RANKING_CODEC = msgspec.json.Encoder(), msgspec.json.Decoder(list[Ranked])


class SqlRankingStore:
    """``feed_rankings``: one row per user; a read is one statement with its freshness checks."""

    def __init__(self, db: Database, *, insert_batch: int = INSERT_BATCH) -> None:
        self.db = db
        self.insert_batch = insert_batch

    async def put_many(self, rankings: Sequence[tuple[uuid.UUID, list[Ranked]]], computed_at: datetime) -> None:
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
            async with self.db.write() as executor:
                await executor.run_many(sql.PUT_RANKING, rows)

    async def fresh(self, user_id: uuid.UUID) -> list[Ranked] | None:
        return _decode_ranking(await self.db.reads.value(sql.FRESH_RANKING, user_id=user_id))


def _decode_ranking(blob: bytes | None) -> list[Ranked] | None:
    if blob is None:
        return None
    try:
        return _RANKING_CODEC[1].decode(blob)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None  # an older format: recomputed
