"""Shared test settings. Keep it small; add fixtures below."""
from hypothesis import settings

# Deterministic everywhere (CI and laptops): the same examples on every run,
# no example database written into the tree.
settings.register_profile("herald", derandomize=True, database=None, print_blob=True)
settings.load_profile("herald")

# One PostgreSQL cluster per session for the store tests; see tests/postgres.py.
from postgres import postgres_server, postgres_url  # noqa: E402,F401
