"""The library's JSON API: ``flask --app lending.app run``.

The app is built at import time from ``DATABASE_URL``, like many Flask apps; nothing here
knows about tests. Every write commits on success; a duplicate or a refused loan rolls
back what the request had written and answers 404 or 409.
"""

from __future__ import annotations

import os

from flask import Flask, abort, jsonify, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .models import Book, Loan, Member, db

MAX_OPEN_LOANS = 3


def create_app(database_url: str) -> Flask:
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url
    db.init_app(app)
    app.register_error_handler(404, lambda e: (jsonify(error=e.description), 404))
    app.register_error_handler(409, lambda e: (jsonify(error=e.description), 409))

    @app.post("/members")
    def add_member():
        body = request.get_json()
        member = Member(email=body["email"], name=body["name"])
        db.session.add(member)
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            abort(409, f"a member with email {body['email']} already exists")
        return member_json(member), 201

    @app.post("/members/import")
    def import_members():
        """All or nothing: one duplicate email and none of the members are added."""
        members = [Member(email=m["email"], name=m["name"]) for m in request.get_json()]
        db.session.add_all(members)
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            abort(409, "a member already exists: none were imported")
        return jsonify([member_json(m) for m in members]), 201

    @app.get("/members/<int:member_id>")
    def get_member(member_id: int):
        member = db.get_or_404(Member, member_id, description="no such member")
        open_loans = [loan.book_id for loan in member.loans if loan.open_marker]
        return {**member_json(member), "open_loans": open_loans}

    @app.post("/books")
    def add_book():
        body = request.get_json()
        copies = body.get("copies", 1)
        book = Book(title=body["title"], isbn=body["isbn"], copies=copies, available=copies)
        db.session.add(book)
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            abort(409, f"a book with ISBN {body['isbn']} already exists")
        return book_json(book), 201

    @app.get("/books")
    def list_books():
        return jsonify([book_json(b) for b in db.session.scalars(select(Book).order_by(Book.id))])

    @app.post("/loans")
    def borrow():
        """Lend each of ``book_ids`` to the member; one that cannot be lent rolls back them all."""
        body = request.get_json()
        member = db.get_or_404(Member, body["member_id"], description="no such member")
        loans = []
        for book_id in body["book_ids"]:
            book = db.session.get(Book, book_id)
            if book is None:
                db.session.rollback()
                abort(404, f"no book {book_id}")
            if book.available < 1:
                db.session.rollback()
                abort(409, f"no copy of {book.title!r} is available")
            open_loans = sum(1 for loan in member.loans if loan.open_marker) + len(loans)
            if open_loans >= MAX_OPEN_LOANS:
                db.session.rollback()
                abort(409, f"{member.name} already has {MAX_OPEN_LOANS} books")
            book.available -= 1
            loan = Loan(member=member, book=book)
            db.session.add(loan)
            loans.append(loan)
            try:
                db.session.flush()
            except IntegrityError:  # the same book, still on loan to the same member
                db.session.rollback()
                abort(409, f"{member.name} already has {book.title!r}")
        db.session.commit()
        return jsonify([{"id": loan.id, "book_id": loan.book_id} for loan in loans]), 201

    @app.post("/loans/<int:loan_id>/return")
    def give_back(loan_id: int):
        loan = db.get_or_404(Loan, loan_id, description="no such loan")
        if loan.open_marker is None:
            abort(409, "this loan was already returned")
        loan.open_marker = None
        loan.book.available += 1
        db.session.commit()
        return {"id": loan.id, "returned": True}

    return app


def member_json(member: Member) -> dict[str, object]:
    return {"id": member.id, "email": member.email, "name": member.name}


def book_json(book: Book) -> dict[str, object]:
    return {"id": book.id, "title": book.title, "isbn": book.isbn, "copies": book.copies, "available": book.available}


app = create_app(os.environ["DATABASE_URL"])
