from sqlalchemy import func, insert, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.db import engine
from app.models import User


async def create_user(request: Request) -> JSONResponse:
    body = await request.json()
    with engine.begin() as conn:
        conn.execute(insert(User).values(email=body["email"]))
    return JSONResponse({"ok": True}, status_code=201)


async def count_users(request: Request) -> JSONResponse:
    with engine.connect() as conn:
        return JSONResponse({"count": conn.execute(select(func.count()).select_from(User)).scalar_one()})


app = Starlette(routes=[Route("/users", create_user, methods=["POST"]), Route("/users/count", count_users)])
