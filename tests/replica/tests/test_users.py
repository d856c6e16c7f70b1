import asyncio

import pytest
from sqlalchemy import func, insert, select, text
from starlette.testclient import TestClient

from app.db import async_engine, engine
from app.models import User
from app.web import app


def count_users():
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(User)).scalar_one()


@pytest.mark.parametrize("n", range(15))
def test_signup_through_the_api(n):
    client = TestClient(app)
    assert client.post("/users", json={"email": "alice@example.com"}).status_code == 201
    for _ in range(20):  # the app and the test look at the database a few times
        assert client.get("/users/count").json() == {"count": 1}
        assert count_users() == 1


@pytest.mark.parametrize("n", range(15))
def test_signup_with_the_async_engine(n):
    async def scenario():
        async with async_engine.begin() as conn:
            await conn.execute(insert(User).values(email="bob@example.com"))
        async with async_engine.connect() as conn:
            return (await conn.execute(text("SELECT COUNT(*) FROM users"))).scalar_one()

    assert asyncio.run(scenario()) == 1
    for _ in range(20):
        assert count_users() == 1
