"""Each feature's use cases as one typed bundle: what HTTP handlers, jobs and schedules are given.

``entrypoints.wiring`` builds them (and nothing else does); a handler declares the bundle it needs
(``cart: Cart``, that is ``NamedDependency[CartUseCases]``: ``http.dependencies``), a job or schedule
takes it as an argument. Each attribute is named as its use case's class, in snake case.
"""

from __future__ import annotations

from dataclasses import dataclass

from application.use_cases import auth, cart, notifications, orders, outbox, recommendations, reports, users, webhooks
from application.use_cases.catalog import categories, favorites, products, reviews


@dataclass(frozen=True, slots=True)
class AuthUseCases:
    register: auth.Register
    login: auth.Login
    refresh: auth.Refresh
    logout: auth.Logout
    verify_email: auth.VerifyEmail
    resend_verification: auth.ResendVerification
    request_password_reset: auth.RequestPasswordReset
    confirm_password_reset: auth.ConfirmPasswordReset
    check_access_token: auth.CheckAccessToken


@dataclass(frozen=True, slots=True)
class UserUseCases:
    get_me: users.GetMe
    update_me: users.UpdateMe
    delete_me: users.DeleteMe
    get_public_profile: users.GetPublicProfile
    grant_admin: users.GrantAdmin


@dataclass(frozen=True, slots=True)
class CartUseCases:
    get_cart: cart.GetCart
    add_to_cart: cart.AddToCart
    change_cart_quantity: cart.ChangeCartQuantity
    remove_cart_item: cart.RemoveCartItem
    clear_cart: cart.ClearCart
    create_guest_cart: cart.CreateGuestCart
    resolve_cart_token: cart.ResolveCartToken
    purge_guest_carts: cart.PurgeGuestCarts


@dataclass(frozen=True, slots=True)
class OrderUseCases:
    checkout: orders.Checkout
    list_orders: orders.ListOrders
    get_order: orders.GetOrder
    cancel_order: orders.CancelOrder
    list_sales: orders.ListSales


@dataclass(frozen=True, slots=True)
class CatalogUseCases:
    list_categories: categories.ListCategories
    create_category: categories.CreateCategory
    update_category: categories.UpdateCategory
    delete_category: categories.DeleteCategory
    list_products: products.ListProducts
    get_product: products.GetProduct
    create_product: products.CreateProduct
    update_product: products.UpdateProduct
    withdraw_product: products.WithdrawProduct
    list_reviews: reviews.ListReviews
    create_review: reviews.CreateReview
    update_review: reviews.UpdateReview
    delete_review: reviews.DeleteReview
    list_favorites: favorites.ListFavorites
    add_favorite: favorites.AddFavorite
    remove_favorite: favorites.RemoveFavorite


@dataclass(frozen=True, slots=True)
class RecommendationUseCases:
    get_feed: recommendations.GetFeed
    get_similar_products: recommendations.GetSimilarProducts
    get_model_state: recommendations.GetModelState
    # Background work, on the job side's connections and budget:
    refresh_recommendations: recommendations.RefreshRecommendations
    refresh_popular_items: recommendations.RefreshPopularItems
    update_feed: recommendations.UpdateFeed


@dataclass(frozen=True, slots=True)
class ReportUseCases:
    request_report: reports.RequestReport
    get_report: reports.GetReport
    open_report_download: reports.OpenReportDownload
    build_sales_report: reports.BuildSalesReport  # a job, on the job side


@dataclass(frozen=True, slots=True)
class WebhookUseCases:
    create_webhook: webhooks.CreateWebhook
    list_webhooks: webhooks.ListWebhooks
    delete_webhook: webhooks.DeleteWebhook
    list_deliveries: webhooks.ListDeliveries
    # Jobs: an event fanned out to its subscribers, each delivery attempt, the retries that came due.
    fan_out_webhook_event: webhooks.FanOutWebhookEvent
    deliver_webhook: webhooks.DeliverWebhook
    retry_webhook_deliveries: webhooks.RetryWebhookDeliveries


@dataclass(frozen=True, slots=True)
class NotificationUseCases:
    """The emails, each sent by an outbox job (on the job side)."""

    send_welcome_email: notifications.SendWelcomeEmail
    send_verification_email: notifications.SendVerificationEmail
    send_password_reset_email: notifications.SendPasswordResetEmail
    send_email_changed_notice: notifications.SendEmailChangedNotice
    send_order_confirmation: notifications.SendOrderConfirmation
    send_sale_notice: notifications.SendSaleNotice


@dataclass(frozen=True, slots=True)
class OutboxUseCases:
    run_outbox_job: outbox.RunOutboxJob
    relay_outbox: outbox.RelayOutbox


@dataclass(frozen=True, slots=True)
class UseCases:
    """Every feature's bundle, as the composition root hands them out."""

    auth: AuthUseCases
    users: UserUseCases
    cart: CartUseCases
    orders: OrderUseCases
    catalog: CatalogUseCases
    recommendations: RecommendationUseCases
    reports: ReportUseCases
    webhooks: WebhookUseCases
    notifications: NotificationUseCases
    outbox: OutboxUseCases
