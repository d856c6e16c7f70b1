"""A Starlette app with async endpoints over the service."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from . import service


async def list_books(request: Request) -> JSONResponse:
    return JSONResponse(await service.books())


async def create_author(request: Request) -> JSONResponse:
    body = await request.json()
    try:
        author_id = await service.add_author(body["name"])
    except service.AuthorExists:
        return JSONResponse({"error": f"author {body['name']!r} exists"}, status_code=409)
    return JSONResponse({"id": author_id}, status_code=201)


async def borrow(request: Request) -> JSONResponse:
    try:
        left = await service.borrow(int(request.path_params["book_id"]))
    except service.NoSuchBook:
        return JSONResponse({"error": "no such book"}, status_code=404)
    except service.OutOfCopies:
        return JSONResponse({"error": "out of copies"}, status_code=409)
    return JSONResponse({"copies": left})


app = Starlette(
    routes=[
        Route("/books", list_books),
        Route("/authors", create_author, methods=["POST"]),
        Route("/books/{book_id:int}/borrow", borrow, methods=["POST"]),
    ]
)
