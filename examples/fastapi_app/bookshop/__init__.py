"""A small bookshop API: FastAPI, SQLAlchemy 2, a sync ``Session`` per request."""
