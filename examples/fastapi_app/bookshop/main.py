"""The bookshop's JSON API (``uvicorn bookshop.main:app``).

Every write commits on success; a failed order or a duplicate rolls back what the
request had written and answers 404 or 409.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .database import get_session
from .models import Author, Book, Order, OrderLine

app = FastAPI(title="bookshop")
SessionDep = Annotated[Session, Depends(get_session)]


class AuthorIn(BaseModel):
    name: str


class BookIn(BaseModel):
    title: str
    isbn: str
    author_id: int
    stock: int = 0
    price_cents: int = 0


class LineIn(BaseModel):
    book_id: int
    quantity: int = Field(default=1, gt=0)


class OrderIn(BaseModel):
    customer_email: str
    lines: list[LineIn]


def author_json(author: Author) -> dict[str, object]:
    return {"id": author.id, "name": author.name}


def book_json(book: Book) -> dict[str, object]:
    return {
        "id": book.id,
        "title": book.title,
        "isbn": book.isbn,
        "author_id": book.author_id,
        "stock": book.stock,
        "price_cents": book.price_cents,
    }


@app.post("/authors", status_code=201)
def create_author(body: AuthorIn, session: SessionDep) -> dict[str, object]:
    author = Author(name=body.name)
    session.add(author)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise HTTPException(409, f"author {body.name!r} already exists") from None
    return author_json(author)


@app.post("/authors/bulk", status_code=201)
def create_authors(names: list[str], session: SessionDep, skip_existing: bool = False) -> list[dict[str, object]]:
    """All or nothing; with ``skip_existing`` each author gets a savepoint and duplicates are skipped."""
    created = []
    for name in names:
        author = Author(name=name)
        if skip_existing:
            try:
                with session.begin_nested():
                    session.add(author)
            except IntegrityError:
                continue
        else:
            session.add(author)
        created.append(author)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise HTTPException(409, "an author already exists: none were added") from None
    return [author_json(a) for a in created]


@app.get("/authors/{author_id}")
def get_author(author_id: int, session: SessionDep) -> dict[str, object]:
    author = session.get(Author, author_id)
    if author is None:
        raise HTTPException(404, "no such author")
    return {**author_json(author), "books": [book_json(b) for b in author.books]}


@app.post("/books", status_code=201)
def create_book(body: BookIn, session: SessionDep) -> dict[str, object]:
    if session.get(Author, body.author_id) is None:
        raise HTTPException(404, "no such author")
    book = Book(**body.model_dump())
    session.add(book)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise HTTPException(409, f"a book with ISBN {body.isbn} already exists") from None
    return book_json(book)


@app.get("/books")
def list_books(session: SessionDep) -> list[dict[str, object]]:
    return [book_json(b) for b in session.scalars(select(Book).order_by(Book.id))]


@app.get("/books/{book_id}")
def get_book(book_id: int, session: SessionDep) -> dict[str, object]:
    book = session.get(Book, book_id)
    if book is None:
        raise HTTPException(404, "no such book")
    return book_json(book)


@app.post("/books/{book_id}/restock")
def restock(book_id: int, quantity: int, session: SessionDep) -> dict[str, object]:
    book = session.get(Book, book_id)
    if book is None:
        raise HTTPException(404, "no such book")
    book.stock += quantity
    session.commit()
    return book_json(book)


@app.post("/orders", status_code=201)
def place_order(body: OrderIn, session: SessionDep) -> dict[str, object]:
    """Writes the order, then takes each line's books from stock; any missing book or
    short stock rolls the whole order back."""
    order = Order(customer_email=body.customer_email, total_cents=0)
    session.add(order)
    session.flush()
    for line in body.lines:
        book = session.get(Book, line.book_id)
        if book is None:
            session.rollback()
            raise HTTPException(404, f"no book {line.book_id}")
        if book.stock < line.quantity:
            session.rollback()
            raise HTTPException(409, f"only {book.stock} of {book.title!r} left")
        book.stock -= line.quantity
        order.total_cents += book.price_cents * line.quantity
        session.add(OrderLine(order_id=order.id, book_id=book.id, quantity=line.quantity))
        session.flush()
    session.commit()
    return {"id": order.id, "customer_email": order.customer_email, "total_cents": order.total_cents}


@app.get("/orders")
def list_orders(session: SessionDep) -> list[dict[str, object]]:
    orders = session.scalars(select(Order).order_by(Order.id))
    return [{"id": o.id, "customer_email": o.customer_email, "total_cents": o.total_cents} for o in orders]
