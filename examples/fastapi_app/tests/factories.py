"""factory_boy factories for the bookshop's models.

They are bound to dbscope's ``db_session`` fixture by ``conftest.py``, once per test; with
``sqlalchemy_session_persistence = "commit"`` the rows they make are committed, so the
app (another connection under ``clone``, the same one under ``rollback``) sees them.
"""

from __future__ import annotations

import factory
from bookshop.models import Author, Book


class AuthorFactory(factory.alchemy.SQLAlchemyModelFactory):
    class Meta:
        model = Author
        sqlalchemy_session_persistence = "commit"

    name = factory.Sequence(lambda n: f"Author {n}")


class BookFactory(factory.alchemy.SQLAlchemyModelFactory):
    class Meta:
        model = Book
        sqlalchemy_session_persistence = "commit"

    title = factory.Sequence(lambda n: f"Book {n}")
    isbn = factory.Sequence(lambda n: f"978-0-{n:06d}")
    author = factory.SubFactory(AuthorFactory)
    stock = 5
    price_cents = 1000


ALL = [AuthorFactory, BookFactory]
