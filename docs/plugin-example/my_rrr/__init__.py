"""The README's plugin guide example (tested by tests/test_plugins.py)."""
