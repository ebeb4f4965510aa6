"""The service's OpenAPI document, made exact: every answer a route can give, every bound it checks.

FastAPI documents what it validates itself. The service checks more, with limits that come from
:class:`~gemrec.serve.ServeSettings`, and answers errors of its own; :func:`install_openapi`
replaces ``app.openapi`` so that ``/openapi.json`` states all of it:

- every error answer each operation can give, with its body: :class:`ErrorOut` for 400 (also a
  body that is not UTF-8 text), 401, 404 and 413, :class:`ValidationErrorOut` for 422 (the body
  the service really sends, in place of FastAPI's default);
- ``k`` bounded by ``1..max_k`` and each batch by ``max_batch`` rows (longer ones get 422), so that
  a request the schema allows is never refused for its size;
- the bearer key as a security scheme on the operations that check it (when a key is set), in place
  of the ``authorization`` header parameter the access dependencies would otherwise show.

Request bodies are strict pydantic models (:mod:`gemrec.serve._schemas`): nothing outside their
schema is accepted. ``tests/serve/test_contract.py`` holds the app to this document with
Schemathesis.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from gemrec.errors import GemrecError
from gemrec.serve._schemas import ErrorOut, ValidationErrorOut
from gemrec.serve._settings import ServeSettings

__all__ = ["BEARER", "ROUTE_ERRORS", "exact_openapi", "install_openapi"]

#: name of the security scheme in ``components.securitySchemes``
BEARER = "bearer"

#: errors particular to one operation, beyond the ones every operation of its kind can give (422
#: on invalid input, 413 on too large a body, 401 without the key): ``(method, path) -> {status:
#: when}``
ROUTE_ERRORS: dict[tuple[str, str], dict[int, str]] = {
    ("post", "/v1/events"): {404: "An event names an item_id the catalogue does not have."},
    ("get", "/v1/users/{user_id}/recommendations"): {404: "No item has the given category."},
    ("get", "/v1/items/{item_id}/similar"): {404: "Unknown or deleted item_id."},
    ("get", "/v1/users/{user_id}/history"): {
        404: "Unknown user_id (no history, events or registered profile)."
    },
    ("get", "/v1/explain"): {404: "Unknown user_id or item_id."},
    ("delete", "/v1/items/{item_id}"): {404: "Unknown item_id."},
    ("delete", "/v1/users/{user_id}"): {404: "Unknown user_id (no history, profile or events)."},
    ("post", "/v1/admin/reload"): {
        400: "The model does not fit the dataset (its id maps differ).",
        404: "model_dir is not a gemrec model directory.",
    },
}

#: request body schemas whose lists are bounded by ``max_batch``: schema name -> list properties
_BATCHES = {
    "EventBatch": ("events",),
    "ItemBatch": ("items",),
    "UserBatch": ("users",),
    "BlocklistUpdate": ("add", "remove"),
}
#: FastAPI's default 422 body, replaced by the one the service sends
_FASTAPI_422 = ("HTTPValidationError", "ValidationError")
_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})


def install_openapi(app: FastAPI, settings: ServeSettings) -> None:
    """Make ``app.openapi()`` (and ``/openapi.json``) return :func:`exact_openapi`, built once."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = exact_openapi(app, settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def exact_openapi(app: FastAPI, settings: ServeSettings) -> dict[str, Any]:
    """The OpenAPI document of ``app`` as created with ``settings``.

    Parameters
    ----------
    app : FastAPI
        The service, its routers included.
    settings : ServeSettings
        The settings ``app`` was created with: ``max_k``, ``max_batch``, ``max_body_bytes`` and
        ``api_key`` appear in the document.

    Returns
    -------
    dict
        The document, as served at ``/openapi.json``.

    Raises
    ------
    GemrecError
        When :data:`ROUTE_ERRORS` names an operation the app does not have.
    """
    doc = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    schemas: dict[str, Any] = doc.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_422:
        schemas.pop(name, None)
    for model in (ErrorOut, ValidationErrorOut):
        schemas.update(_component(model))
    for name, props in _BATCHES.items():
        for prop in props if name in schemas else ():
            schemas[name]["properties"][prop]["maxItems"] = settings.max_batch
    operations = {
        (method, path): op
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in _METHODS
    }
    stale = sorted(set(ROUTE_ERRORS) - set(operations))
    if stale:
        raise GemrecError(
            f"ROUTE_ERRORS names operations the app does not have: {stale}; "
            f"expected some of: {sorted(operations)}"
        )
    keyed = False
    for key, op in operations.items():
        keyed |= _document_operation(op, settings, ROUTE_ERRORS.get(key, {}))
    if keyed:
        doc["components"]["securitySchemes"] = {
            BEARER: {
                "type": "http",
                "scheme": "bearer",
                "description": "the service's API key: `Authorization: Bearer <key>`",
            }
        }
    return doc


def _document_operation(
    op: dict[str, Any], settings: ServeSettings, errors: dict[int, str]
) -> bool:
    """Complete one operation in place; True when it checks the API key."""
    params = op.get("parameters", [])
    # the access dependencies take the header: the operations that show it are the checked ones
    checks_key = any(p["in"] == "header" and p["name"] == "authorization" for p in params)
    params = [p for p in params if not (p["in"] == "header" and p["name"] == "authorization")]
    for p in params:
        if p["in"] == "query" and p["name"] == "k":
            p["schema"]["maximum"] = settings.max_k
            p["description"] = f"number of items, 1..{settings.max_k} (the service's max_k)"
    if params:
        op["parameters"] = params
    else:
        op.pop("parameters", None)
    responses: dict[str, Any] = op["responses"]
    if params or "requestBody" in op:
        responses["422"] = _error(
            "Invalid request: each invalid field, named, with what it expected.",
            ValidationErrorOut,
        )
    else:  # FastAPI's own 422, there for the optional key header alone, which nothing refuses
        responses.pop("422", None)
    if "requestBody" in op:
        responses["413"] = _error(
            f"Request body over {settings.max_body_bytes} bytes (max_body_bytes).", ErrorOut
        )
        responses["400"] = _error("Request body that cannot be decoded (not UTF-8 text).", ErrorOut)
    keyed = checks_key and settings.api_key is not None
    if keyed:
        op["security"] = [{BEARER: []}]
        responses["401"] = _error("Missing or wrong API key.", ErrorOut)
        responses["401"]["headers"] = {
            "WWW-Authenticate": {"schema": {"type": "string"}, "description": "`Bearer`"}
        }
    for status, when in errors.items():
        if str(status) in responses:
            when = f"{responses[str(status)]['description']} {when}"
        responses[str(status)] = _error(when, ErrorOut)
    op["responses"] = dict(sorted(responses.items()))
    return keyed


def _error(description: str, model: type[BaseModel]) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"description": description, "content": {"application/json": {"schema": ref}}}


def _component(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema and the models it uses, as ``components.schemas`` entries."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    defs: dict[str, Any] = schema.pop("$defs", {})
    return {**defs, model.__name__: schema}
