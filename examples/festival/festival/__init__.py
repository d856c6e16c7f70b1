"""A Lo Cubano Boulder Fest: the festival's ticketing site, small but real.

- :mod:`festival.database`: the database service, a singleton read from ``DATABASE_URL``
- :mod:`festival.shop`: users, events, products, carts, orders, payments, tickets,
  newsletter and logs, as plain functions
- :mod:`festival.app`: the JSON API (Starlette)
"""
