"""Reviews: one per user and product, never of one's own; the product's rating moves with them."""

from __future__ import annotations

import uuid

from msgspec import UNSET, UnsetType

from application.identity import Principal
from application.jobs import record
from application.pagination import PAGE_DEFAULT, Page, check_limit, page_of, resume_after
from application.use_cases.base import UseCase
from application.use_cases.catalog.deps import CatalogDeps
from application.views.catalog import ReviewView
from application.webhook_events import review_events
from domain.catalog import Review, validate_comment, validate_rating
from domain.errors import Conflict, Forbidden, NotFound
from domain.ids import new_id


class ListReviews(UseCase[CatalogDeps]):
    """A live product's reviews, newest first."""

    async def execute(
        self, product_id: uuid.UUID, *, cursor: str | None = None, limit: int = PAGE_DEFAULT
    ) -> Page[ReviewView]:
        check_limit(limit)
        after = resume_after(cursor, "reviews", scope=str(product_id))
        if await self.deps.queries.product(product_id) is None:
            raise NotFound("No such product.", field="product_id")
        rows = await self.deps.queries.reviews(product_id, after, limit + 1)
        return page_of(rows, limit, "reviews", lambda r: (r.created_at, r.id), scope=str(product_id))


class CreateReview(UseCase[CatalogDeps]):
    """One review per user and product (409, the unique key decides races); never on one's own
    product (403). The product's rating counters move in the same transaction."""

    async def execute(
        self, principal: Principal, product_id: uuid.UUID, *, rating: int, comment: str = ""
    ) -> ReviewView:
        rating = validate_rating(rating)
        comment = validate_comment(comment)
        now = self.deps.clock.now()
        async with self.deps.uow() as uow:
            product = await uow.products.get(product_id)
            if product is None:
                raise NotFound("No such product.", field="product_id")
            if product.seller_id == principal.id:
                raise Forbidden("You cannot review your own product.")
            review = Review(
                id=new_id(),
                product_id=product_id,
                author_id=principal.id,
                rating=rating,
                comment=comment,
                verified_purchase=await uow.reviews.has_ordered(principal.id, product_id),
                created_at=now,
                updated_at=now,
            )
            await uow.reviews.add(review)
            await uow.products.apply_rating_change(product_id, rating, 1)
            jobs = await record(
                uow,
                [
                    *await review_events(uow, review, product.seller_id),
                    *self.deps.interaction(principal.id, product_id),
                ],
            )
            await uow.commit()
        await self.deps.products_changed(product_id, feed_of=principal.id)
        await self.deps.dispatch(jobs)
        return await _review_view(self.deps, review.id)


async def _review_view(deps: CatalogDeps, review_id: uuid.UUID) -> ReviewView:
    view = await deps.queries.review(review_id)
    if view is None:
        raise NotFound("No such review.", field="review_id")
    return view


class UpdateReview(UseCase[CatalogDeps]):
    """The author only. A guarded update (on the rating read) keeps the product's sum exact even
    when two edits race: the loser gets 409 and may retry."""

    async def execute(
        self,
        principal: Principal,
        review_id: uuid.UUID,
        *,
        rating: int | UnsetType = UNSET,
        comment: str | UnsetType = UNSET,
    ) -> ReviewView:
        async with self.deps.uow() as uow:
            review = await uow.reviews.get(review_id)
            if review is None:
                raise NotFound("No such review.", field="review_id")
            if review.author_id != principal.id:
                raise Forbidden("Only the author may edit a review.")
            new_rating = review.rating if isinstance(rating, UnsetType) else validate_rating(rating)
            new_comment = review.comment if isinstance(comment, UnsetType) else validate_comment(comment)
            if (new_rating, new_comment) != (review.rating, review.comment):
                updated = await uow.reviews.update(
                    review_id,
                    expected_rating=review.rating,
                    rating=new_rating,
                    comment=new_comment,
                    now=self.deps.clock.now(),
                )
                if not updated:
                    raise Conflict("The review changed meanwhile; fetch it and try again.", field="rating")
                if new_rating != review.rating:
                    await uow.products.apply_rating_change(review.product_id, new_rating - review.rating, 0)
                await uow.commit()
                await self.deps.products_changed(review.product_id, feed_of=principal.id)
        return await _review_view(self.deps, review_id)


class DeleteReview(UseCase[CatalogDeps]):
    """The author or an admin; the product's counters drop in the same transaction."""

    async def execute(self, principal: Principal, review_id: uuid.UUID) -> None:
        async with self.deps.uow() as uow:
            review = await uow.reviews.get(review_id)
            if review is None:
                raise NotFound("No such review.", field="review_id")
            if review.author_id != principal.id and not principal.is_admin:
                raise Forbidden("Only the author or an admin may delete a review.")
            rating = await uow.reviews.delete(review_id)
            if rating is None:
                raise NotFound("No such review.", field="review_id")
            await uow.products.apply_rating_change(review.product_id, -rating, -1)
            # The author's feed no longer counts this review: recomputed by the feed job.
            jobs = await record(uow, self.deps.interaction(review.author_id, review.product_id))
            await uow.commit()
        await self.deps.products_changed(review.product_id, feed_of=review.author_id)
        await self.deps.dispatch(jobs)
