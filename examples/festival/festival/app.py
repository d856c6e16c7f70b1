"""The festival's JSON API (Starlette).

Every endpoint runs its database work in the thread pool (``run_in_threadpool``), and
the database comes from :func:`festival.database.get_database`, i.e. from
``DATABASE_URL``. Under Starlette's TestClient the app runs in yet another thread: it
reaches the test's in-memory database through the URL alone.

    uvicorn festival.app:app        # DATABASE_URL=sqlite:///festival.db by default
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from . import shop
from .database import StatementTimeout, get_database

__all__ = ["app", "create_app"]


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise shop.BadRequest("the request body must be JSON") from None
    if not isinstance(body, dict):
        raise shop.BadRequest("the request body must be a JSON object")
    return body


def _int(request: Request, name: str) -> int:
    try:
        return int(request.path_params[name])
    except ValueError:
        raise shop.NotFound(f"{name} must be a number") from None


async def _call(status: int, func: Callable[..., Any], *args: Any) -> JSONResponse:
    return JSONResponse(await run_in_threadpool(func, *args), status_code=status)


# -- endpoints ---------------------------------------------------------------------------


async def health(request: Request) -> JSONResponse:
    database = get_database()
    ok = await run_in_threadpool(database.health_check)
    return JSONResponse({"status": "ok" if ok else "unavailable"}, status_code=200 if ok else 503)


async def create_user(request: Request) -> JSONResponse:
    body = await _body(request)
    return await _call(201, shop.create_user, body.get("name"), body.get("email"))


async def get_user(request: Request) -> JSONResponse:
    return await _call(200, shop.get_user, _int(request, "user_id"))


async def list_events(request: Request) -> JSONResponse:
    return await _call(200, shop.list_events)


async def register_for_event(request: Request) -> JSONResponse:
    body = await _body(request)
    return await _call(201, shop.register_for_event, request.path_params["slug"], body.get("email"))


async def get_product(request: Request) -> JSONResponse:
    return await _call(200, shop.get_product, request.path_params["product_id"])


async def purchase(request: Request) -> JSONResponse:
    body = await _body(request)
    return await _call(201, shop.purchase, request.path_params["product_id"], body.get("quantity"), body.get("email"))


async def create_cart(request: Request) -> JSONResponse:
    body = await _body(request)
    return await _call(201, shop.create_cart, body.get("email"))


async def get_cart(request: Request) -> JSONResponse:
    return await _call(200, shop.get_cart, _int(request, "cart_id"))


async def add_to_cart(request: Request) -> JSONResponse:
    body = await _body(request)
    return await _call(200, shop.add_to_cart, _int(request, "cart_id"), body.get("product_id"), body.get("quantity"))


async def checkout(request: Request) -> JSONResponse:
    return await _call(201, shop.checkout, _int(request, "cart_id"))


async def get_order(request: Request) -> JSONResponse:
    return await _call(200, shop.get_order, _int(request, "order_id"))


async def pay_order(request: Request) -> JSONResponse:
    body = await _body(request)
    return await _call(
        200, shop.pay_order, _int(request, "order_id"), body.get("card_number"), body.get("holder_name", "Guest")
    )


async def get_ticket(request: Request) -> JSONResponse:
    return await _call(200, shop.get_ticket, request.path_params["code"])


async def check_in(request: Request) -> JSONResponse:
    return await _call(200, shop.check_in, request.path_params["code"])


async def subscribe(request: Request) -> JSONResponse:
    body = await _body(request)
    return await _call(201, shop.subscribe, body.get("email"))


async def write_log(request: Request) -> JSONResponse:
    body = await _body(request)
    return await _call(201, shop.write_log, body.get("message"), body.get("level", "info"))


async def list_logs(request: Request) -> JSONResponse:
    return await _call(200, shop.list_logs, request.query_params.get("level"))


# -- errors ------------------------------------------------------------------------------


async def api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, shop.ApiError)
    return JSONResponse({"error": exc.message}, status_code=exc.status)


async def statement_timeout(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"error": "the database took too long; try again"}, status_code=503)


ROUTES = [
    Route("/api/health", health),
    Route("/api/users", create_user, methods=["POST"]),
    Route("/api/users/{user_id}", get_user),
    Route("/api/events", list_events),
    Route("/api/events/{slug}/registrations", register_for_event, methods=["POST"]),
    Route("/api/products/{product_id}", get_product),
    Route("/api/products/{product_id}/purchase", purchase, methods=["POST"]),
    Route("/api/carts", create_cart, methods=["POST"]),
    Route("/api/carts/{cart_id}", get_cart),
    Route("/api/carts/{cart_id}/items", add_to_cart, methods=["POST"]),
    Route("/api/carts/{cart_id}/checkout", checkout, methods=["POST"]),
    Route("/api/orders/{order_id}", get_order),
    Route("/api/orders/{order_id}/payments", pay_order, methods=["POST"]),
    Route("/api/tickets/{code}", get_ticket),
    Route("/api/tickets/{code}/check-in", check_in, methods=["POST"]),
    Route("/api/newsletter", subscribe, methods=["POST"]),
    Route("/api/logs", write_log, methods=["POST"]),
    Route("/api/logs", list_logs, methods=["GET"]),
]


def create_app() -> Starlette:
    return Starlette(
        routes=ROUTES,
        exception_handlers={shop.ApiError: api_error, StatementTimeout: statement_timeout},
    )


app = create_app()
