"""Users, their refresh and email tokens, and the access-token check."""

from __future__ import annotations

from sqlalchemy import bindparam, func, insert, or_, select, update

from adapters.sql.statements.common import bound, columns
from adapters.sql.tables import EMAIL_TOKENS, REFRESH_TOKENS, USERS

USER_COLUMNS = columns(
    USERS,
    "id",
    "username",
    "email",
    "password_hash",
    "role",
    "created_at",
    "updated_at",
    "email_verified",
    "token_version",
    "deleted_at",
)
# An INSERT of a whole table takes every column as a parameter of the column's name.
INSERT_USER = insert(USERS)
UPDATE_USER = (
    update(USERS)
    .where(USERS.c.id == bindparam("user_id"))
    .values(
        bound(
            "username", "email", "password_hash", "role", "email_verified", "token_version", "deleted_at", "updated_at"
        )
    )
)
USER_BY_ID = select(*USER_COLUMNS).where(USERS.c.id == bindparam("user_id"), USERS.c.deleted_at.is_(None))
# Either name, case-insensitively: the two lower() indexes answer it.
USER_BY_LOGIN = (
    select(*USER_COLUMNS)
    .where(
        or_(func.lower(USERS.c.email) == bindparam("login"), func.lower(USERS.c.username) == bindparam("login")),
        USERS.c.deleted_at.is_(None),
    )
    .limit(1)
)

# The check in front of every authenticated request, one index probe each: the account's role and
# token version, and no revoked row in the token's refresh family (a replayed or ended session).
_FAMILY_REVOKED = (
    select(REFRESH_TOKENS.c.id)
    .where(REFRESH_TOKENS.c.family_id == bindparam("family_id"), REFRESH_TOKENS.c.revoked_at.is_not(None))
    .exists()
)
ACCOUNT_STATE = select(USERS.c.role, USERS.c.token_version).where(
    USERS.c.id == bindparam("user_id"), USERS.c.deleted_at.is_(None), ~_FAMILY_REVOKED
)

REFRESH_TOKEN_COLUMNS = columns(
    REFRESH_TOKENS, "id", "user_id", "family_id", "token_hash", "expires_at", "created_at", "used_at", "revoked_at"
)
INSERT_REFRESH_TOKEN = insert(REFRESH_TOKENS)
REFRESH_TOKEN_BY_HASH = select(*REFRESH_TOKEN_COLUMNS).where(REFRESH_TOKENS.c.token_hash == bindparam("token_hash"))
# Spent once: the guard is the WHERE, so of two racing refreshes only one updates a row.
SPEND_REFRESH_TOKEN = (
    update(REFRESH_TOKENS)
    .where(
        REFRESH_TOKENS.c.id == bindparam("token_id"),
        REFRESH_TOKENS.c.used_at.is_(None),
        REFRESH_TOKENS.c.revoked_at.is_(None),
    )
    .values(used_at=bindparam("now"), updated_at=bindparam("now"))
)
# Bind names in the WHERE of an UPDATE never repeat a column name of its table (SQLAlchemy
# would take such a parameter for a SET value on SQLite).
REVOKE_FAMILY = (
    update(REFRESH_TOKENS)
    .where(REFRESH_TOKENS.c.family_id == bindparam("family"), REFRESH_TOKENS.c.revoked_at.is_(None))
    .values(revoked_at=bindparam("now"), updated_at=bindparam("now"))
)
_LIVE_OF_USER = (REFRESH_TOKENS.c.user_id == bindparam("owner"), REFRESH_TOKENS.c.revoked_at.is_(None))
REVOKE_USER = (
    update(REFRESH_TOKENS).where(*_LIVE_OF_USER).values(revoked_at=bindparam("now"), updated_at=bindparam("now"))
)
REVOKE_USER_BUT_FAMILY = (
    update(REFRESH_TOKENS)
    .where(*_LIVE_OF_USER, REFRESH_TOKENS.c.family_id != bindparam("keep_family"))
    .values(revoked_at=bindparam("now"), updated_at=bindparam("now"))
)

EMAIL_TOKEN_COLUMNS = columns(
    EMAIL_TOKENS, "id", "user_id", "purpose", "token_hash", "expires_at", "created_at", "used_at"
)
INSERT_EMAIL_TOKEN = insert(EMAIL_TOKENS)
EMAIL_TOKEN_BY_HASH = select(*EMAIL_TOKEN_COLUMNS).where(
    EMAIL_TOKENS.c.token_hash == bindparam("token_hash"), EMAIL_TOKENS.c.purpose == bindparam("purpose")
)
SPEND_EMAIL_TOKEN = (
    update(EMAIL_TOKENS)
    .where(EMAIL_TOKENS.c.id == bindparam("token_id"), EMAIL_TOKENS.c.used_at.is_(None))
    .values(used_at=bindparam("now"), updated_at=bindparam("now"))
)
SPEND_EMAIL_TOKENS_OF_USER = (
    update(EMAIL_TOKENS)
    .where(
        EMAIL_TOKENS.c.user_id == bindparam("owner"),
        EMAIL_TOKENS.c.purpose == bindparam("for_purpose"),
        EMAIL_TOKENS.c.used_at.is_(None),
    )
    .values(used_at=bindparam("now"), updated_at=bindparam("now"))
)
