"""The decoding edge: every string that enters is checked once, here, before a handler runs.

One ``before_request`` hook, for every route:

- A JSON body that is not valid UTF-8 is a 400 (msgspec raises ``UnicodeDecodeError``, which is
  no decoding error of its own kind and used to surface as a 500).
- A NUL character (``\\u0000``) in any string — a JSON key or value, a form field, a query or path
  parameter, a header — is a 422 naming the field. PostgreSQL text cannot hold NUL, so without
  this rule the same request would be a 500 there and a quiet success on SQLite.
- Wrong JSON types are 400, not silently coerced: Litestar converts a decoded body into the
  handler's ``data`` Struct with msgspec's lax mode (``"quantity": "2"`` would become 2), so the
  body is decoded once more, strictly, against the same Struct and a type mismatch names the field.

Everything else (malformed JSON, missing fields, rule violations such as ``quantity: 0``) is left
to Litestar's own decoding, which reports it as before (400 or 422).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import msgspec
from litestar import Request
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import ValidationException

from domain.errors import InvalidInput, RuleViolation

# msgspec's wording for a value of the wrong JSON type: "Expected `int`, got `str` - at `$.quantity`".
_TYPE_MISMATCH = re.compile(r"^Expected `[^`]+`, got `[^`]+`")
NUL = "\x00"
_FORMS = (RequestEncodingType.URL_ENCODED, RequestEncodingType.MULTI_PART)


def _data_field(request: Request[Any, Any, Any]) -> tuple[Any, Any] | None:
    """(media type, annotation) of a handler's ``data`` parameter, or None (cheap: a parsed signature)."""
    field = request.route_handler.parsed_fn_signature.parameters.get("data")
    if field is None:
        return None
    return getattr(field.kwarg_definition, "media_type", RequestEncodingType.JSON), field.annotation


def _nul_error(field: str | None, where: str) -> RuleViolation:
    """422 naming the field (``where`` says which part of the request: body, form, query, path, header)."""
    return RuleViolation(
        f"{field or where} ({where}) must not contain the NUL character (\\u0000).", field=field or where
    )


def find_nul(value: Any, path: str = "") -> str | None:
    """The path (``items[0].name``) of the first string key or value holding NUL, or None."""
    if isinstance(value, str):
        return path if NUL in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and NUL in key:
                return here
            found = find_nul(item, here)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = find_nul(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def _check_pairs(pairs: Iterable[tuple[str, Any]], where: str) -> None:
    for key, value in pairs:
        values = value if isinstance(value, list) else [value]
        for item in values:
            text = item.filename if isinstance(item, UploadFile) else item
            if NUL in key or (isinstance(text, str) and NUL in text):
                raise _nul_error(str(key), where)


def _check_body_text(body: bytes) -> None:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("The request body is not valid UTF-8.") from None
    # JSON strings can only hold NUL as the escape \u0000 (a raw NUL byte is malformed JSON), so
    # bodies without one (nearly all) skip the walk.
    if b"\\u0000" not in body:
        return
    try:
        decoded = msgspec.json.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return  # malformed: Litestar answers 400 with its own message
    found = find_nul(decoded)
    if found is not None:
        raise _nul_error(found or None, "body")


def _reject_coerced_types(body: bytes, body_type: Any) -> None:
    try:
        msgspec.json.decode(body, type=body_type, strict=True)
    except msgspec.ValidationError as error:
        message, _, where = str(error).partition(" - at `")
        if not _TYPE_MISMATCH.match(message):
            return  # a rule violation or a missing field: Litestar reports it (422 or 400)
        key = where.rstrip("`").removeprefix("$").removeprefix(".") or None
        raise ValidationException(
            detail="The request body has a value of the wrong type.",
            extra=[{"message": message, "key": key, "source": "body"}],
        ) from None
    except msgspec.DecodeError:
        return  # malformed JSON: Litestar answers 400 with its own message


async def check_request_input(request: Request[Any, Any, Any]) -> None:
    """``before_request`` hook: the request's text is valid UTF-8 without NUL, its JSON types exact."""
    _check_pairs(((k, v) for k, v in request.path_params.items()), "path")
    _check_pairs(request.query_params.multi_items(), "query")
    _check_pairs(request.headers.items(), "header")
    data = _data_field(request)
    if data is None:
        return
    media_type, annotation = data
    if media_type in _FORMS:
        _check_pairs((await request.form()).multi_items(), "form")
        return
    if media_type != RequestEncodingType.JSON:
        return
    body = await request.body()  # cached on the connection: Litestar's own decoding reuses it
    if not body:
        return
    _check_body_text(body)
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        _reject_coerced_types(body, annotation)
