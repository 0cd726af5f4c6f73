"""Kept for tests/forward/test_forward.py until it imports tests/integration/dropbear_server.py itself."""
from dropbear_server import DROPBEAR, Dropbear, available  # noqa: F401
