import pytest
from sqlalchemy import delete

from app.db import engine
from app.models import Base, User


@pytest.fixture(scope="session", autouse=True)
def tables():
    Base.metadata.create_all(engine)
    yield
    Base.metadata.drop_all(engine)


@pytest.fixture(autouse=True)
def clean_rows():
    yield
    with engine.begin() as conn:
        conn.execute(delete(User))
