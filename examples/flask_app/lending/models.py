"""The library's tables, as Flask-SQLAlchemy models; ``db.metadata`` is the schema."""

from __future__ import annotations

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class Member(db.Model):
    __tablename__ = "members"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(200))

    loans: Mapped[list[Loan]] = relationship(back_populates="member")


class Book(db.Model):
    __tablename__ = "books"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    isbn: Mapped[str] = mapped_column(String(20), unique=True)
    copies: Mapped[int] = mapped_column(default=1)
    available: Mapped[int] = mapped_column(default=1)


class Loan(db.Model):
    __tablename__ = "loans"
    # one open or closed loan of a book per member and day would be a policy; this one is simpler:
    # a member cannot borrow the same book twice while the first loan is open
    __table_args__ = (UniqueConstraint("member_id", "book_id", "open_marker"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    book_id: Mapped[int] = mapped_column(ForeignKey("books.id"))
    # 1 while the loan is open, NULL once returned (NULLs never collide in a unique constraint)
    open_marker: Mapped[int | None] = mapped_column(default=1)

    member: Mapped[Member] = relationship(back_populates="loans")
    book: Mapped[Book] = relationship()
