"""Reliability suite: load, faults, isolation proofs, bad input, security, fuzzing.

Tests here record what they measured with the ``figures`` fixture; the run writes them to
``tests/reliability/figures.json`` (docs/reliability.md quotes these figures). The fixture
and the hooks that collect the figures from xdist workers are in figures.py, which
tests/conftest.py loads as a plugin.

The load, fault and fuzz modules (test_load*.py, test_faults.py, test_pg_faults.py,
test_fuzz.py, test_isolation_properties.py) are marked ``slow``: ``./run tests --all``
and CI run them, ``./run tests`` does not. Bad input and security run in both.
"""
