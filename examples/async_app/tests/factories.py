"""factory_boy factories on the test's ``db_session`` (bound in conftest.py)."""

from __future__ import annotations

import factory
from factory.alchemy import SQLAlchemyModelFactory

from catalog.models import Author, Book


class AuthorFactory(SQLAlchemyModelFactory):
    class Meta:
        model = Author
        sqlalchemy_session_persistence = "commit"  # a savepoint of the test's transaction under rollback

    name = factory.Sequence(lambda n: f"Author {n}")


class BookFactory(SQLAlchemyModelFactory):
    class Meta:
        model = Book
        sqlalchemy_session_persistence = "commit"

    author = factory.SubFactory(AuthorFactory)
    title = factory.Sequence(lambda n: f"Book {n}")
    copies = 2
