"""Wrong JSON types in request bodies are 400, not silently coerced.

Litestar converts a decoded body into the handler's ``data`` Struct with msgspec's lax mode
(``strict=False``): ``"quantity": "2"`` would become 2 and ``"stock": 3.0`` would become 3. The
contract says wrong types get 400, so before the handler runs this hook decodes the body once
more, strictly, against the same Struct: a type mismatch becomes a 400 problem naming the
field. Everything else (malformed JSON, missing fields, rule violations such as ``quantity: 0``)
is left to Litestar's own decoding, which reports it as before (400 or 422).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Request
from litestar.enums import RequestEncodingType
from litestar.exceptions import ValidationException

# msgspec's wording for a value of the wrong JSON type: "Expected `int`, got `str` - at `$.quantity`".
_TYPE_MISMATCH = re.compile(r"^Expected `[^`]+`, got `[^`]+`")


def _body_type(request: Request[Any, Any, Any]) -> Any:
    """The msgspec Struct a handler's JSON ``data`` is decoded into, or None (cheap: a parsed signature)."""
    field = request.route_handler.parsed_fn_signature.parameters.get("data")
    if field is None:
        return None
    media_type = getattr(field.kwarg_definition, "media_type", RequestEncodingType.JSON)
    annotation = field.annotation
    is_struct = isinstance(annotation, type) and issubclass(annotation, msgspec.Struct)
    return annotation if media_type == RequestEncodingType.JSON and is_struct else None


async def reject_coerced_json_types(request: Request[Any, Any, Any]) -> None:
    """``before_request`` hook: 400 when the body only fits its Struct by coercing a JSON type."""
    body_type = _body_type(request)
    if body_type is None:
        return
    body = await request.body()  # cached on the connection: Litestar's own decoding reuses it
    if not body:
        return
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
