"""Reference server (d): the same endpoints as a typical team writes them with FastAPI + SQLAlchemy ORM.

No project code. Async SQLAlchemy ORM models with relationships, ``joinedload`` for the detail,
``selectinload`` for lists, pydantic response models built ``from_attributes``, a
``get_current_user`` dependency that checks the JWT (pyjwt) and loads the user, and cart/checkout
as ORM reads and writes in one session. It is deliberately ordinary, not tuned: the project should
beat it by a wide margin (target ≥ 2.5×). It reads the project's tables and verifies the project's
access tokens (same ``JWT_SECRET``), so the bench drives both with the same data and users.

    DATABASE_URL=postgresql://... JWT_SECRET=... granian --interface asgi --workers 2 \\
        --working-dir bench/reference fastapi_orm:app
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated

import jwt
from fastapi import Depends, FastAPI, Header, HTTPException
from pydantic import BaseModel, ConfigDict
from sqlalchemy import DateTime, ForeignKey, String, func, literal_column, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, joinedload, mapped_column, relationship, selectinload
from uuid_utils.compat import uuid7

DATABASE_URL = os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+asyncpg://", 1)
engine = create_async_engine(
    DATABASE_URL, pool_size=10, max_overflow=10, pool_pre_ping=True, connect_args={"server_settings": {"jit": "off"}}
)
Session = async_sessionmaker(engine, expire_on_commit=False)
PAGE = 20


def now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: DateTime(timezone=True)}


class User(Base):
    __tablename__ = "users"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(32))
    token_version: Mapped[int]
    deleted_at: Mapped[datetime | None]


class Category(Base):
    __tablename__ = "categories"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str]
    slug: Mapped[str]
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("categories.id"))


class Product(Base):
    __tablename__ = "products"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    seller_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    category_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("categories.id"))
    name: Mapped[str]
    description: Mapped[str]
    price: Mapped[Decimal]
    image_url: Mapped[str | None]
    stock: Mapped[int]
    rating_avg: Mapped[Decimal]
    review_count: Mapped[int]
    favorite_count: Mapped[int]
    withdrawn_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    seller: Mapped[User] = relationship()
    category: Mapped[Category] = relationship()


class CartItem(Base):
    __tablename__ = "cart_items"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id"))
    quantity: Mapped[int]
    price_at_add: Mapped[Decimal]
    created_at: Mapped[datetime] = mapped_column(default=now)
    updated_at: Mapped[datetime] = mapped_column(default=now, onupdate=now)
    product: Mapped[Product] = relationship()


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    buyer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(default="placed")
    total: Mapped[Decimal]
    idempotency_key: Mapped[str | None]
    created_at: Mapped[datetime] = mapped_column(default=now)
    updated_at: Mapped[datetime] = mapped_column(default=now)
    lines: Mapped[list[OrderLine]] = relationship()


class OrderLine(Base):
    __tablename__ = "order_lines"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"))
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id"))
    seller_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    buyer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str]
    unit_price: Mapped[Decimal]
    quantity: Mapped[int]
    line_total: Mapped[Decimal]
    created_at: Mapped[datetime] = mapped_column(default=now)
    updated_at: Mapped[datetime] = mapped_column(default=now)


class Schema(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class UserRefOut(Schema):
    id: uuid.UUID
    username: str


class CategoryRefOut(Schema):
    id: uuid.UUID
    name: str
    slug: str


class ProductSummaryOut(Schema):
    id: uuid.UUID
    seller: UserRefOut
    name: str
    price: Decimal
    image_url: str | None
    category: CategoryRefOut
    stock: int
    rating_avg: float | None
    review_count: int
    favorite_count: int
    created_at: datetime
    updated_at: datetime


class ProductOut(ProductSummaryOut):
    description: str


class PageOut(Schema):
    items: list[ProductSummaryOut]
    next_cursor: str | None


class CategoryOut(Schema):
    id: uuid.UUID
    name: str
    slug: str
    parent_id: uuid.UUID | None
    product_count: int


class CartProductOut(Schema):
    id: uuid.UUID
    name: str
    price: Decimal
    image_url: str | None
    stock: int
    seller: UserRefOut


class CartItemOut(Schema):
    id: uuid.UUID
    product: CartProductOut
    quantity: int
    unit_price: Decimal
    line_total: Decimal
    price_changed: bool


class CartOut(Schema):
    items: list[CartItemOut]
    total: Decimal


class AddItemIn(BaseModel):
    product_id: uuid.UUID
    quantity: int = 1


class OrderLineOut(Schema):
    product_id: uuid.UUID
    name: str
    unit_price: Decimal
    quantity: int
    line_total: Decimal


class OrderOut(Schema):
    id: uuid.UUID
    status: str
    items: list[OrderLineOut]
    total: Decimal
    created_at: datetime


async def get_session() -> AsyncIterator[AsyncSession]:
    async with Session() as session:
        yield session


DB = Annotated[AsyncSession, Depends(get_session)]


async def current_user(session: DB, authorization: Annotated[str, Header()] = "") -> User:
    try:
        claims = jwt.decode(
            authorization.removeprefix("Bearer "),
            os.environ["JWT_SECRET"],
            algorithms=["HS256"],
            audience=os.environ.get("JWT_AUDIENCE", "marketplace-api"),
            issuer=os.environ.get("JWT_ISSUER", "marketplace"),
        )
    except jwt.PyJWTError:
        raise HTTPException(401, "not authenticated") from None
    user = await session.get(User, uuid.UUID(claims["sub"]))
    if user is None or user.deleted_at is not None or user.token_version != claims.get("extras", {}).get("ver"):
        raise HTTPException(401, "not authenticated")
    return user


CurrentUser = Annotated[User, Depends(current_user)]
app = FastAPI()


def summary(product: Product) -> ProductSummaryOut:
    out = ProductSummaryOut.model_validate(product)
    out.rating_avg = float(product.rating_avg) if product.review_count else None
    return out


@app.get("/products/{product_id}", response_model=ProductOut)
async def get_product(product_id: uuid.UUID, session: DB) -> ProductOut:
    product = await session.scalar(
        select(Product)
        .options(joinedload(Product.seller), joinedload(Product.category))
        .where(Product.id == product_id, Product.withdrawn_at.is_(None))
    )
    if product is None:
        raise HTTPException(404, "not found")
    out = ProductOut.model_validate(product)
    out.rating_avg = float(product.rating_avg) if product.review_count else None
    return out


@app.get("/products", response_model=PageOut)
async def list_products(
    session: DB, category_id: uuid.UUID | None = None, q: str | None = None, cursor: str | None = None
) -> PageOut:
    stmt = select(Product).options(selectinload(Product.seller), selectinload(Product.category))
    stmt = stmt.where(Product.withdrawn_at.is_(None))
    if q:
        query = func.websearch_to_tsquery(literal_column("'english'::regconfig"), q)
        vector = literal_column("products.search_vector")
        rank = func.ts_rank(vector, query)
        stmt = stmt.where(vector.op("@@")(query)).order_by(rank.desc(), Product.id.desc())
    else:
        if category_id is not None:
            ids = [category_id, *(await session.scalars(select(Category.id).where(Category.parent_id == category_id)))]
            stmt = stmt.where(Product.category_id.in_(ids))
        if cursor:
            created, last_id = json.loads(base64.urlsafe_b64decode(cursor))
            after = (datetime.fromisoformat(created), uuid.UUID(last_id))
            stmt = stmt.where(
                (Product.created_at < after[0]) | ((Product.created_at == after[0]) & (Product.id < after[1]))
            )
        stmt = stmt.order_by(Product.created_at.desc(), Product.id.desc())
    products = list(await session.scalars(stmt.limit(PAGE + 1)))
    next_cursor = None
    if len(products) > PAGE and not q:
        last = products[PAGE - 1]
        raw = json.dumps([last.created_at.isoformat(), str(last.id)]).encode()
        next_cursor = base64.urlsafe_b64encode(raw).decode()
    return PageOut(items=[summary(p) for p in products[:PAGE]], next_cursor=next_cursor)


@app.get("/categories", response_model=list[CategoryOut])
async def list_categories(session: DB) -> list[CategoryOut]:
    categories = list(await session.scalars(select(Category).order_by(Category.name, Category.id)))
    per_category = select(Product.category_id, func.count()).where(Product.withdrawn_at.is_(None))
    counts = dict((await session.execute(per_category.group_by(Product.category_id))).tuples().all())
    result = []
    for category in categories:
        subtree = [c.id for c in categories if c.id == category.id or c.parent_id == category.id]
        result.append(
            CategoryOut(
                id=category.id,
                name=category.name,
                slug=category.slug,
                parent_id=category.parent_id,
                product_count=sum(counts.get(c, 0) for c in subtree),
            )
        )
    return result


def cart_out(items: list[CartItem]) -> CartOut:
    lines = [
        CartItemOut(
            id=item.id,
            product=CartProductOut.model_validate(item.product),
            quantity=item.quantity,
            unit_price=item.product.price,
            line_total=item.product.price * item.quantity,
            price_changed=item.product.price != item.price_at_add,
        )
        for item in items
    ]
    return CartOut(items=lines, total=sum((line.line_total for line in lines), Decimal("0.00")))


@app.get("/cart", response_model=CartOut)
async def get_cart(user: CurrentUser, session: DB) -> CartOut:
    items = await session.scalars(
        select(CartItem)
        .join(CartItem.product)
        .where(CartItem.user_id == user.id, Product.withdrawn_at.is_(None))
        .options(selectinload(CartItem.product).selectinload(Product.seller))
        .order_by(CartItem.created_at)
    )
    return cart_out(list(items))


@app.post("/cart/items", response_model=CartItemOut, status_code=201)
async def add_to_cart(body: AddItemIn, user: CurrentUser, session: DB) -> CartItemOut:
    product = await session.get(Product, body.product_id, options=[selectinload(Product.seller)])
    if product is None or product.withdrawn_at is not None:
        raise HTTPException(404, "no such product")
    if product.seller_id == user.id:
        raise HTTPException(403, "own product")
    item = await session.scalar(
        select(CartItem).where(CartItem.user_id == user.id, CartItem.product_id == product.id).with_for_update()
    )
    if item is None:
        item = CartItem(user_id=user.id, product_id=product.id, quantity=0, price_at_add=product.price)
        session.add(item)
    item.quantity += body.quantity
    if item.quantity > min(product.stock, 99):
        raise HTTPException(409, "not enough stock")
    await session.commit()
    item.product = product
    return cart_out([item]).items[0]


@app.post("/cart/checkout", response_model=OrderOut, status_code=201)
async def checkout(user: CurrentUser, session: DB, idempotency_key: Annotated[str | None, Header()] = None) -> OrderOut:
    items = list(
        await session.scalars(
            select(CartItem)
            .where(CartItem.user_id == user.id)
            .options(selectinload(CartItem.product))
            .order_by(CartItem.product_id)  # lock products in one order: no deadlocks between checkouts
        )
    )
    if not items:
        raise HTTPException(422, "empty cart")
    order = Order(buyer_id=user.id, status="placed", total=Decimal("0.00"), idempotency_key=idempotency_key)
    for item in items:
        taken = await session.execute(
            update(Product)
            .where(Product.id == item.product_id, Product.stock >= item.quantity)
            .values(stock=Product.stock - item.quantity)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            await session.rollback()
            raise HTTPException(409, "out of stock")
        line_total = item.product.price * item.quantity
        order.lines.append(
            OrderLine(product_id=item.product_id, seller_id=item.product.seller_id, buyer_id=user.id,
                      name=item.product.name, unit_price=item.product.price, quantity=item.quantity,
                      line_total=line_total)
        )  # fmt: skip
        order.total += line_total
        await session.delete(item)
    session.add(order)
    await session.commit()
    return OrderOut(id=order.id, status=order.status, items=[OrderLineOut.model_validate(li) for li in order.lines],
                    total=order.total, created_at=order.created_at)  # fmt: skip


@app.get("/ready")
async def ready(session: DB) -> dict[str, bool]:
    await session.execute(select(1))
    return {"ready": True}
