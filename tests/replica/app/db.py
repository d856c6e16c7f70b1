"""Engines built at import time from the environment, as many real projects do."""

import os

from sqlalchemy import create_engine
from sqlalchemy.ext.asyncio import create_async_engine

engine = create_engine(os.environ.get("TEST_DATABASE_URI", "sqlite:///test.db"))
async_engine = create_async_engine(os.environ.get("TEST_ASYNC_DATABASE_URI", "sqlite+aiosqlite:///test.db"))
