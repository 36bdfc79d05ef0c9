"""What every HTTP boundary guarantees: no 5xx for any input, refusals in French.

- `french_message`: a pydantic validation error as a sentence a person can read, naming the
  field (the `RequestValidationError` handler of `assistance.web` uses it).
- `BodyLimit`: a pure ASGI middleware that refuses a body larger than the cap with a 413 in the
  error shape, checking `Content-Length` first and counting bytes as they stream, so a large
  body is never read whole.
- `document_refusals`: every status code an operation can answer is in the OpenAPI, with the
  error schema: 401/403 where a token is checked, 404 where a path names a thing, 409 on writes,
  413 where a body is read, 422 everywhere, 503 where a dependency may be down.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from http import HTTPStatus
from typing import Annotated, Any

from fastapi import FastAPI, Query
from pydantic import AfterValidator
from pydantic_core import PydanticCustomError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# --- query parameters every service shares -------------------------------------------------------

# A page offset PostgreSQL can take (bigint), and far past any real list: beyond it, a 422.
MAX_OFFSET = 1_000_000
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Rang du premier élément")]

FIRST_YEAR, LAST_YEAR = 1970, 2200


def plausible(moment: datetime) -> datetime:
    """A date of the service's life: year 1 or 9999 would overflow time zone arithmetic."""
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        raise PydanticCustomError(
            "date_out_of_range",
            f"Date hors des limites (années {FIRST_YEAR} à {LAST_YEAR}).",
        )
    return moment


Moment = Annotated[datetime, AfterValidator(plausible)]
OWN_ERRORS = {"control_character", "line_break", "date_out_of_range"}


# --- French messages -----------------------------------------------------------------------------


def _limit(ctx: Mapping[str, Any], key: str) -> str:
    return str(ctx.get(key, "?"))


def _plural(n: Any, word: str) -> str:
    try:
        many = int(n) > 1
    except (TypeError, ValueError):
        many = True
    return f"{n} {word}{'s' if many else ''}"


def french_message(error: Mapping[str, Any]) -> str:
    """The sentence for one pydantic error (`exc.errors()[i]`), without the field name."""
    kind = str(error.get("type", ""))
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    simple = {
        "missing": "Ce champ est obligatoire.",
        "extra_forbidden": "Ce champ n'est pas attendu.",
        "json_invalid": "Le corps de la demande n'est pas un JSON valide.",
        "json_type": "Le corps de la demande doit être du JSON.",
        "string_type": "Une chaîne de caractères est attendue.",
        "string_sub_type": "Une chaîne de caractères est attendue.",
        "string_unicode": "Le texte n'est pas un Unicode valide.",
        "string_pattern_mismatch": "Le format de ce texte n'est pas accepté.",
        "int_type": "Un nombre entier est attendu.",
        "int_parsing": "Un nombre entier est attendu.",
        "int_parsing_size": "Ce nombre est trop grand.",
        "int_from_float": "Un nombre entier (sans décimale) est attendu.",
        "float_type": "Un nombre est attendu.",
        "float_parsing": "Un nombre est attendu.",
        "finite_number": "Un nombre fini est attendu.",
        "bool_type": "Une valeur vrai/faux est attendue.",
        "bool_parsing": "Une valeur vrai/faux est attendue (true ou false).",
        "uuid_type": "Un identifiant (UUID) est attendu.",
        "uuid_parsing": "Un identifiant (UUID) est attendu.",
        "uuid_version": "Cet identifiant (UUID) n'a pas la bonne version.",
        "date_type": "Une date est attendue.",
        "date_parsing": "Une date AAAA-MM-JJ valide est attendue.",
        "date_from_datetime_parsing": "Une date AAAA-MM-JJ valide est attendue.",
        "date_from_datetime_inexact": "Une date sans heure est attendue.",
        "date_past": "Une date passée est attendue.",
        "date_future": "Une date future est attendue.",
        "datetime_type": "Une date et heure est attendue.",
        "datetime_parsing": "Une date et heure ISO 8601 valide est attendue.",
        "datetime_from_date_parsing": "Une date et heure ISO 8601 valide est attendue.",
        "datetime_object_invalid": "Cette date et heure n'existe pas.",
        "datetime_past": "Une date et heure passée est attendue.",
        "datetime_future": "Une date et heure future est attendue.",
        "timezone_aware": "L'heure doit indiquer son décalage (par ex. +01:00).",
        "timezone_naive": "L'heure ne doit pas indiquer de décalage.",
        "time_parsing": "Une heure HH:MM valide est attendue.",
        "time_type": "Une heure est attendue.",
        "time_delta_parsing": "Une durée valide est attendue.",
        "dict_type": "Un objet JSON est attendu.",
        "model_type": "Un objet JSON est attendu.",
        "model_attributes_type": "Un objet JSON est attendu.",
        "list_type": "Une liste est attendue.",
        "tuple_type": "Une liste est attendue.",
        "set_type": "Une liste est attendue.",
        "url_parsing": "Une adresse web valide est attendue.",
        "url_scheme": "Cette adresse web n'a pas un schéma accepté.",
        "url_type": "Une adresse web est attendue.",
        "none_required": "Ce champ doit rester vide.",
        "frozen_field": "Ce champ ne peut pas être modifié.",
        "union_tag_invalid": "Cette valeur n'est pas acceptée.",
        "union_tag_not_found": "Cette valeur n'est pas acceptée.",
        "is_instance_of": "Cette valeur n'est pas acceptée.",
        "bytes_type": "Un contenu est attendu.",
        "value_error": "Cette valeur n'est pas acceptée.",
    }
    if kind in OWN_ERRORS:  # raised by our own validators, already in French
        return str(error.get("msg", "Texte refusé."))
    if kind == "string_too_short":
        if int(ctx.get("min_length", 1) or 1) <= 1:
            return "Ce champ ne peut pas être vide."
        return f"Au moins {_plural(_limit(ctx, 'min_length'), 'caractère')}."
    if kind == "string_too_long":
        return f"Au plus {_plural(_limit(ctx, 'max_length'), 'caractère')}."
    if kind == "too_short":
        return f"Au moins {_plural(_limit(ctx, 'min_length'), 'élément')}."
    if kind == "too_long":
        return f"Au plus {_plural(_limit(ctx, 'max_length'), 'élément')}."
    if kind == "greater_than":
        return f"La valeur doit être supérieure à {_limit(ctx, 'gt')}."
    if kind == "greater_than_equal":
        return f"La valeur doit être au moins {_limit(ctx, 'ge')}."
    if kind == "less_than":
        return f"La valeur doit être inférieure à {_limit(ctx, 'lt')}."
    if kind == "less_than_equal":
        return f"La valeur doit être au plus {_limit(ctx, 'le')}."
    if kind == "multiple_of":
        return f"La valeur doit être un multiple de {_limit(ctx, 'multiple_of')}."
    if kind in ("literal_error", "enum"):
        expected = str(ctx.get("expected", "")).replace(" or ", " ou ")
        return f"Valeur inconnue ; valeurs acceptées : {expected}." if expected else simple["enum"]
    if kind == "value_error":
        if "reason" in ctx:  # pydantic's own checks (an e-mail address), in English
            return (
                "Adresse e-mail invalide."
                if "email" in str(error.get("msg", "")).lower()
                else (simple["value_error"])
            )
        # our validators raise ValueErrors in French, by the house rule: shown as they are
        reason = str(ctx.get("error") or "").strip()
        if reason:
            return reason[:1].upper() + reason[1:] + ("" if reason.endswith(".") else ".")
        return simple["value_error"]
    if kind == "assertion_error":
        return simple["value_error"]
    return simple.get(kind, "Cette valeur n'est pas acceptée.")


def field_of(loc: Sequence[Any]) -> str | None:
    """`("body", "requester", "name")` → `requester.name`: the place, without where it was sent."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return ".".join(parts) or None


def explain(errors: Sequence[Mapping[str, Any]]) -> tuple[str, str, str | None]:
    """`(code, message, field)` of the first error, fit for the error shape."""
    if not errors:
        return "invalid", "La demande n'est pas valide.", None
    first = errors[0]
    kind = str(first.get("type", ""))
    loc = tuple(first.get("loc", ()))
    if kind == "json_invalid":
        return "json_invalid", french_message(first), None
    field = field_of(loc)
    if kind == "missing" and loc == ("body",):  # no body at all
        return "invalid", "Le corps de la demande est obligatoire.", None
    message = french_message(first)
    return "invalid", (f"{field} : {message}" if field else message), field


# What the framework's own refusals say, in French (their `detail` is English).
HTTP_MESSAGES: dict[int, str] = {
    400: "La demande est mal formée.",
    404: "Introuvable.",
    405: "Cette méthode n'est pas permise ici.",
    413: "La demande est trop volumineuse.",
    415: "Ce type de contenu n'est pas accepté.",
}


# FastAPI answers 400 « There was an error parsing the body » for a JSON body that is not even
# text (bytes that are not UTF-8): the same refusal as any invalid JSON, a 422 `json_invalid`.
UNREADABLE_BODY = ("json_invalid", "Le corps de la demande n'est pas un JSON valide.")


def unreadable_body(request: Any, status: int, detail: Any) -> bool:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return (
        status == 400
        and str(detail).startswith("There was an error parsing the body")
        and (kind == "application/json" or kind.endswith("+json"))
    )


def http_message(status: int, detail: Any) -> str:
    """The French sentence for a framework refusal; a detail we wrote ourselves is kept."""
    text = str(detail)
    try:
        default = HTTPStatus(status).phrase
    except ValueError:
        default = ""
    if text == default or not text:
        return HTTP_MESSAGES.get(status, "La demande ne peut pas être traitée.")
    return text


# --- the body cap --------------------------------------------------------------------------------


def _too_large(limit: int) -> bytes:
    mib = limit / (1024 * 1024)
    size = f"{mib:.0f} Mio" if mib >= 1 else f"{limit} octets"
    return json.dumps(
        {
            "error": {
                "code": "body_too_large",
                "message": f"La demande est trop volumineuse (au plus {size}).",
                "field": None,
            }
        },
        ensure_ascii=False,
    ).encode()


class _TooLarge(Exception):
    pass


class BodyLimit:
    """Refuse bodies over `max_bytes` (multipart uploads: `max_upload_bytes`) with a 413.

    `Content-Length` is checked before anything is read; a chunked body is counted as it
    streams and cut at the first byte over the cap, so no handler ever holds it whole.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        limit = self.max_upload_bytes if kind == b"multipart/form-data" else self.max_bytes
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                too_big = False  # the server refuses a malformed length itself
            if too_big:
                await self._refuse(send, limit)
                return
        seen = 0
        over = False  # the body went past the cap: whatever the app answers, it is a 413
        refused = False

        async def counting_receive() -> Message:
            nonlocal seen, over
            if over:
                raise _TooLarge
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    over = True
                    raise _TooLarge
            return message

        started = False  # the app answered before the body went past the cap: its answer

        async def guarded_send(message: Message) -> None:
            nonlocal refused, started
            if over and not started:  # the app turned our signal into its own refusal
                if not refused:
                    refused = True
                    await self._refuse(send, limit)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception as exc:
            if not (over or _caused_by_too_large(exc)):
                raise
        if over and not (refused or started):
            await self._refuse(send, limit)

    async def _refuse(self, send: Send, limit: int) -> None:
        body = _too_large(limit)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _caused_by_too_large(exc: BaseException) -> bool:
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, _TooLarge):
            return True
        if isinstance(current, BaseExceptionGroup):
            stack.extend(current.exceptions)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                stack.append(linked)
    return False


# --- the OpenAPI: every answer an operation can give ---------------------------------------------

ERROR_SCHEMA_NAME = "Error"
ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "Code stable, pour les programmes"},
                "message": {"type": "string", "description": "Message en français, à montrer"},
                "field": {
                    "anyOf": [{"type": "string"}, {"type": "null"}],
                    "description": "Le champ fautif, s'il y en a un",
                },
            },
        }
    },
}

REFUSALS: dict[int, str] = {
    400: "Demande mal formée",
    401: "Authentification requise, ou jeton inconnu ou révoqué",
    403: "Rôle non autorisé, ou ressource d'une autre organisation",
    404: "Introuvable",
    405: "Méthode non permise",
    409: "Conflit avec l'état actuel",
    413: "Corps de la demande trop volumineux (`MAX_BODY_BYTES`)",
    422: "Demande invalide : `error.field` nomme le champ fautif, le message est en français",
    503: "Une dépendance (PostgreSQL, Temporal, NATS) est momentanément indisponible",
}
_WRITES = {"post", "put", "patch", "delete"}


def _codes_for(method: str, path: str, operation: Mapping[str, Any]) -> set[int]:
    codes = {422, 503}  # 422: any parameter or header may be invalid; 503: a dependency is down
    if operation.get("security"):
        codes |= {401, 403}  # the token is checked: unknown (401), or a role not allowed (403)
    if "{" in path:
        codes.add(404)
    if method in _WRITES:
        codes |= {404, 409, 413}
    return codes


def document_refusals(app: FastAPI, extra: Mapping[tuple[str, str], Sequence[int]] = ()) -> None:  # type: ignore[assignment]
    """Make `app.openapi()` list, for each operation, every refusal it can answer.

    Done centrally and by rule (`_codes_for`), plus the per-route extras routes already declare
    in `responses=`; every refusal points at the one `Error` schema.
    """

    previous = app.openapi  # FastAPI's, or a hook installed before (Idempotency-Key)
    documented: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        if documented:
            return documented[0]
        schema = previous()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components[ERROR_SCHEMA_NAME] = ERROR_SCHEMA
        ref = {"$ref": f"#/components/schemas/{ERROR_SCHEMA_NAME}"}
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        for path, item in schema.get("paths", {}).items():
            for method, operation in item.items():
                if method not in {"get", "post", "put", "patch", "delete", "head", "options"}:
                    continue
                responses = operation.setdefault("responses", {})
                wanted = _codes_for(method, path, operation)
                wanted |= set(dict(extra).get((method, path), ()))
                wanted |= {int(c) for c in responses if str(c).isdigit() and int(c) >= 400}
                for code in sorted(wanted):
                    entry = responses.setdefault(str(code), {})
                    entry["description"] = entry.get("description") or REFUSALS.get(code, "Refus")
                    if entry["description"] == "Validation Error":
                        entry["description"] = REFUSALS[422]
                    entry["content"] = {"application/json": {"schema": ref}}
        app.openapi_schema = schema
        documented.append(schema)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
