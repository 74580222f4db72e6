"""Each feature's use cases, built on the adapters: one function per bundle.

Requests get the request side's connections; whatever runs as a job (mail, the sales report, the
model refreshes, feed updates, the outbox itself) gets the job side's (``Adapters.jobs``).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from application.use_cases import auth, cart, notifications, orders, recommendations, reports, users, webhooks
from application.use_cases.catalog import categories, favorites, products, reviews
from application.use_cases.catalog.deps import CatalogDeps
from application.use_cases.outbox import RelayOutbox, RunOutboxJob
from entrypoints.bundles import (
    AuthUseCases,
    CartUseCases,
    CatalogUseCases,
    NotificationUseCases,
    OrderUseCases,
    OutboxUseCases,
    RecommendationUseCases,
    ReportUseCases,
    UseCases,
    UserUseCases,
    WebhookUseCases,
)
from entrypoints.jobs import outbox_handlers
from entrypoints.settings import Settings
from entrypoints.wiring.adapters import Adapters


def build_use_cases(settings: Settings, adapters: Adapters) -> UseCases:
    auth_deps = auth.AuthDeps(
        uow=adapters.requests.uow,
        hasher=adapters.hasher,
        tokens=adapters.tokens,
        kv=adapters.kv,
        clock=adapters.clock,
        jobs=adapters.dispatcher,
    )
    recommendation_cases = _recommendations(adapters)
    report_cases = _reports(adapters)
    webhook_cases = _webhooks(settings, adapters)
    emails = _notifications(settings, adapters)
    return UseCases(
        auth=_auth(settings, adapters, auth_deps),
        users=_users(adapters, auth_deps),
        cart=_cart(adapters),
        orders=_orders(adapters),
        catalog=_catalog(adapters),
        recommendations=recommendation_cases,
        reports=report_cases,
        webhooks=webhook_cases,
        notifications=emails,
        outbox=_outbox(adapters, emails, report_cases, recommendation_cases, webhook_cases),
    )


def _auth(settings: Settings, adapters: Adapters, deps: auth.AuthDeps) -> AuthUseCases:
    return AuthUseCases(
        register=auth.Register(deps),
        login=auth.Login(deps, failure_limit=settings.login_failure_limit),
        refresh=auth.Refresh(deps),
        logout=auth.Logout(deps),
        verify_email=auth.VerifyEmail(deps),
        resend_verification=auth.ResendVerification(deps),
        request_password_reset=auth.RequestPasswordReset(deps),
        confirm_password_reset=auth.ConfirmPasswordReset(deps),
        check_access_token=auth.CheckAccessToken(deps, adapters.account_states),
    )


def _users(adapters: Adapters, auth_deps: auth.AuthDeps) -> UserUseCases:
    return UserUseCases(
        get_me=users.GetMe(adapters.requests.uow),
        update_me=users.UpdateMe(auth_deps),
        delete_me=users.DeleteMe(auth_deps, adapters.invalidation),
        get_public_profile=users.GetPublicProfile(adapters.catalog_queries),
        grant_admin=users.GrantAdmin(adapters.requests.uow),
    )


def _cart(adapters: Adapters) -> CartUseCases:
    uow, clock, reads = adapters.requests.uow, adapters.clock, adapters.cart_reads
    return CartUseCases(
        get_cart=cart.GetCart(reads),
        add_to_cart=cart.AddToCart(uow, clock),
        change_cart_quantity=cart.ChangeCartQuantity(uow, clock),
        remove_cart_item=cart.RemoveCartItem(uow),
        clear_cart=cart.ClearCart(uow),
        create_guest_cart=cart.CreateGuestCart(uow, clock),
        resolve_cart_token=cart.ResolveCartToken(uow, clock, reads),
        purge_guest_carts=cart.PurgeGuestCarts(uow, clock),
    )


def _orders(adapters: Adapters) -> OrderUseCases:
    uow, clock = adapters.requests.uow, adapters.clock
    return OrderUseCases(
        checkout=orders.Checkout(
            orders.OrderDeps(uow=uow, clock=clock, jobs=adapters.dispatcher, invalidation=adapters.invalidation)
        ),
        list_orders=orders.ListOrders(uow),
        get_order=orders.GetOrder(uow),
        cancel_order=orders.CancelOrder(uow, clock, adapters.invalidation, adapters.dispatcher),
        list_sales=orders.ListSales(uow),
    )


def _catalog(adapters: Adapters) -> CatalogUseCases:
    deps = CatalogDeps(
        uow=adapters.requests.uow,
        queries=adapters.catalog_queries,
        clock=adapters.clock,
        invalidation=adapters.invalidation,
        jobs=adapters.dispatcher,
    )
    return CatalogUseCases(
        list_categories=categories.ListCategories(deps),
        create_category=categories.CreateCategory(deps),
        update_category=categories.UpdateCategory(deps),
        delete_category=categories.DeleteCategory(deps),
        list_products=products.ListProducts(deps),
        get_product=products.GetProduct(deps),
        create_product=products.CreateProduct(deps),
        update_product=products.UpdateProduct(deps),
        withdraw_product=products.WithdrawProduct(deps),
        list_reviews=reviews.ListReviews(deps),
        create_review=reviews.CreateReview(deps),
        update_review=reviews.UpdateReview(deps),
        delete_review=reviews.DeleteReview(deps),
        list_favorites=favorites.ListFavorites(deps),
        add_favorite=favorites.AddFavorite(deps),
        remove_favorite=favorites.RemoveFavorite(deps),
    )


def _recommendations(adapters: Adapters) -> RecommendationUseCases:
    serving = recommendations.RecommendationDeps(
        source=adapters.requests.interactions,
        store=adapters.requests.neighbours,
        queries=adapters.catalog_queries,
        cache=adapters.cache,
        clock=adapters.clock,
        rankings=adapters.requests.rankings,
    )
    background = replace(
        serving,
        source=adapters.jobs.interactions,
        store=adapters.jobs.neighbours,
        rankings=adapters.jobs.rankings,
    )
    return RecommendationUseCases(
        get_feed=recommendations.GetFeed(serving),
        get_similar_products=recommendations.GetSimilarProducts(serving),
        get_model_state=recommendations.GetModelState(serving),
        refresh_recommendations=recommendations.RefreshRecommendations(background),
        refresh_popular_items=recommendations.RefreshPopularItems(background),
        update_feed=recommendations.UpdateFeed(background),
    )


def _reports(adapters: Adapters) -> ReportUseCases:
    deps = reports.ReportDeps(
        uow=adapters.requests.uow,
        clock=adapters.clock,
        jobs=adapters.dispatcher,
        sales=adapters.requests.sales_lines,
        storage=adapters.report_storage,
    )
    return ReportUseCases(
        request_report=reports.RequestReport(deps),
        get_report=reports.GetReport(deps),
        open_report_download=reports.OpenReportDownload(deps),
        build_sales_report=reports.BuildSalesReport(
            replace(deps, uow=adapters.jobs.uow, sales=adapters.jobs.sales_lines)
        ),
    )


def _webhooks(settings: Settings, adapters: Adapters) -> WebhookUseCases:
    deps = webhooks.WebhookDeps(
        uow=adapters.requests.uow,
        clock=adapters.clock,
        resolver=adapters.resolver,
        sender=adapters.webhook_sender,
        queue=adapters.queue,
        allow_private=settings.webhook_allow_private,
        retry_base=timedelta(seconds=settings.webhook_retry_base_seconds),
    )
    return WebhookUseCases(
        create_webhook=webhooks.CreateWebhook(deps),
        list_webhooks=webhooks.ListWebhooks(deps.uow),
        delete_webhook=webhooks.DeleteWebhook(deps.uow),
        list_deliveries=webhooks.ListDeliveries(deps.uow),
        fan_out_webhook_event=webhooks.FanOutWebhookEvent(deps),
        deliver_webhook=webhooks.DeliverWebhook(deps),
        retry_webhook_deliveries=webhooks.RetryWebhookDeliveries(deps),
    )


def _notifications(settings: Settings, adapters: Adapters) -> NotificationUseCases:
    deps = notifications.MailDeps(
        uow=adapters.jobs.uow,
        mailer=adapters.mailer,
        orders=adapters.jobs.order_mail,
        public_base_url=settings.public_base_url,
    )
    return NotificationUseCases(
        send_welcome_email=notifications.SendWelcomeEmail(deps),
        send_verification_email=notifications.SendVerificationEmail(deps),
        send_password_reset_email=notifications.SendPasswordResetEmail(deps),
        send_email_changed_notice=notifications.SendEmailChangedNotice(deps),
        send_order_confirmation=notifications.SendOrderConfirmation(deps),
        send_sale_notice=notifications.SendSaleNotice(deps),
    )


def _outbox(
    adapters: Adapters,
    emails: NotificationUseCases,
    report_cases: ReportUseCases,
    recommendation_cases: RecommendationUseCases,
    webhook_cases: WebhookUseCases,
) -> OutboxUseCases:
    """Outbox jobs run, and are relayed, on the job side."""
    handlers = outbox_handlers(
        emails,
        report_cases.build_sales_report,
        recommendation_cases.update_feed,
        webhook_cases.fan_out_webhook_event,
    )
    return OutboxUseCases(
        run_outbox_job=RunOutboxJob(adapters.jobs.outbox, handlers, adapters.clock),
        relay_outbox=RelayOutbox(adapters.jobs.outbox, adapters.queue, adapters.clock),
    )
