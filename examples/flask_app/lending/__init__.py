"""A small lending library: Flask, Flask-SQLAlchemy, one module-level app."""
