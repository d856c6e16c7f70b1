"""factory_boy factories for the library's models.

They are bound to dbscope's ``db_session`` fixture by ``conftest.py``, once per test; with
``sqlalchemy_session_persistence = "commit"`` the rows they make are committed, so the
app (another connection under ``clone``, the same one under ``rollback``) sees them.
"""

from __future__ import annotations

import factory
from lending.models import Book, Loan, Member


class MemberFactory(factory.alchemy.SQLAlchemyModelFactory):
    class Meta:
        model = Member
        sqlalchemy_session_persistence = "commit"

    name = factory.Sequence(lambda n: f"Member {n}")
    email = factory.LazyAttribute(lambda m: f"{m.name.lower().replace(' ', '.')}@example.com")


class BookFactory(factory.alchemy.SQLAlchemyModelFactory):
    class Meta:
        model = Book
        sqlalchemy_session_persistence = "commit"

    title = factory.Sequence(lambda n: f"Book {n}")
    isbn = factory.Sequence(lambda n: f"978-1-{n:06d}")
    copies = 2
    available = factory.SelfAttribute("copies")


class LoanFactory(factory.alchemy.SQLAlchemyModelFactory):
    class Meta:
        model = Loan
        sqlalchemy_session_persistence = "commit"

    member = factory.SubFactory(MemberFactory)
    book = factory.SubFactory(BookFactory)
    open_marker = 1


ALL = [MemberFactory, BookFactory, LoanFactory]
