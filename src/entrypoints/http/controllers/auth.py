"""Auth routes: register, login (JSON and OAuth2 form), refresh, logout, email verification, reset."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Response, post
from litestar.params import JSONBody, URLEncodedBody
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT

from application.use_cases.auth import TokenPair
from entrypoints.http.dependencies import Auth, Caller
from entrypoints.http.schemas import (
    LoginBody,
    OAuth2PasswordForm,
    PasswordResetBody,
    PasswordResetConfirmBody,
    RefreshBody,
    RegisterBody,
    TokenBody,
    TokenPairOut,
    UserOut,
    to_struct,
)
from entrypoints.http.security import PUBLIC, CartTokenHeader

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
MERGE_NOTE = (
    "With a guest cart token (`X-Cart-Token`, or `cart_token` in the JSON body; the header wins) the "
    "guest cart is merged into the user's cart and the token is spent: quantities add per product, "
    "capped by the stock and 99 per line; the user's own and withdrawn products are dropped. One merge "
    "however many logins race with one token. An unknown, expired or spent token never fails the "
    "login: it succeeds and nothing is merged."
)
# The two login routes differ only in how the credentials come.
LOGIN: dict[str, Any] = {"status_code": HTTP_200_OK, "description": MERGE_NOTE, **PUBLIC}


def _pair(pair: TokenPair) -> Response[TokenPairOut]:
    return Response(
        TokenPairOut(
            access_token=pair.access_token,
            refresh_token=pair.refresh_token,
            token_type=pair.token_type,
            expires_in=pair.expires_in,
        ),
        headers=NO_STORE,
    )


class AuthController(Controller):
    path = "/api/auth"
    tags = ["auth"]

    @post("/register", operation_id="register", summary="Create an account", raises=[], **PUBLIC)
    async def register(self, data: JSONBody[RegisterBody], auth: Auth) -> Response[UserOut]:
        """username 3–32 of [A-Za-z0-9_.-] (unique, case-insensitive); valid unique email; password 10–128
        characters. 409 when taken.
        """
        user = await auth.register.execute(username=data.username, email=data.email, password=data.password)
        return Response(to_struct(user, UserOut), status_code=201, headers=NO_STORE)

    @post("/login", operation_id="login", summary="Log in with email (or username) and password", **LOGIN)
    async def login(
        self, data: JSONBody[LoginBody], auth: Auth, cart_token: CartTokenHeader = None
    ) -> Response[TokenPairOut]:
        merge = cart_token if cart_token is not None else data.cart_token
        return _pair(await auth.login.execute(login=data.email, password=data.password, cart_token=merge))

    @post("/token", operation_id="loginForm", summary="Log in with an OAuth2 password form", **LOGIN)
    async def token(
        self, data: URLEncodedBody[OAuth2PasswordForm], auth: Auth, cart_token: CartTokenHeader = None
    ) -> Response[TokenPairOut]:
        return _pair(await auth.login.execute(login=data.username, password=data.password, cart_token=cart_token))

    @post(
        "/refresh",
        operation_id="refreshSession",
        summary="Rotate a refresh token for a new pair",
        status_code=HTTP_200_OK,
        **PUBLIC,
    )
    async def refresh(self, data: JSONBody[RefreshBody], auth: Auth) -> Response[TokenPairOut]:
        return _pair(await auth.refresh.execute(refresh_token=data.refresh_token))

    @post(
        "/logout",
        operation_id="logout",
        summary="Revoke this access token and its session",
        status_code=HTTP_204_NO_CONTENT,
    )
    async def logout(self, request: Caller, auth: Auth) -> None:
        await auth.logout.execute(request.user)

    @post(
        "/verify-email",
        operation_id="verifyEmail",
        summary="Confirm an email address",
        status_code=HTTP_204_NO_CONTENT,
        **PUBLIC,
    )
    async def verify_email(self, data: JSONBody[TokenBody], auth: Auth) -> None:
        await auth.verify_email.execute(token=data.token)

    @post(
        "/verify-email/resend",
        operation_id="resendVerificationEmail",
        summary="Send the verification email again",
        status_code=HTTP_202_ACCEPTED,
    )
    async def resend(self, request: Caller, auth: Auth) -> dict[str, str]:
        await auth.resend_verification.execute(request.user)
        return {"detail": "A new verification email is on its way (unless already verified)."}

    @post(
        "/password-reset",
        operation_id="requestPasswordReset",
        summary="Email a password-reset link",
        status_code=HTTP_202_ACCEPTED,
        **PUBLIC,
    )
    async def password_reset(self, data: JSONBody[PasswordResetBody], auth: Auth) -> dict[str, str]:
        """Always 202, whether or not the account exists."""
        await auth.request_password_reset.execute(email=data.email)
        return {"detail": "If an account has that email, a reset link is on its way."}

    @post(
        "/password-reset/confirm",
        operation_id="confirmPasswordReset",
        summary="Set a new password from a reset link",
        status_code=HTTP_204_NO_CONTENT,
        **PUBLIC,
    )
    async def password_reset_confirm(self, data: JSONBody[PasswordResetConfirmBody], auth: Auth) -> None:
        await auth.confirm_password_reset.execute(token=data.token, new_password=data.new_password)
