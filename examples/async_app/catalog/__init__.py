"""A small async catalogue service: authors, books and loans, on SQLAlchemy's asyncio extension.

- :mod:`catalog.models`: the tables (``Base.metadata`` is also what dbscope migrates from)
- :mod:`catalog.db`: the engine and sessionmaker, built at import from ``DATABASE_URL``
- :mod:`catalog.service`: the operations, each in its own session and transaction
- :mod:`catalog.web`: a Starlette app with async endpoints over the service
"""
