"""The plugin guide's example (docs/plugins.md; tested by tests/test_plugins.py)."""
