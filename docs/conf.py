"""Sphinx configuration of the PRNF documentation (Markdown pages through myst-parser).

Build: ``sphinx-build -W -b html docs docs/_build/html`` (``pip install '.[docs]'``).
``tests/test_docs.py`` builds it the same way and runs the pages' runnable examples
(see ``docs/README.md``).
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "_ext"))
sys.path.insert(0, os.path.dirname(HERE))      # the package, when built from a source tree

project = "PRNF"
author = "PRNF developers"
copyright = "PRNF developers, MIT licence"
try:
    from importlib.metadata import version as _version
    release = _version("prnf")
except Exception:  # building from a tree that is not installed
    release = "0+unknown"
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "prnf_cli",                 # docs/_ext/prnf_cli.py: the CLI reference from build_parser()
]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "README.md", "examples", "plugin-example", "Thumbs.db", ".DS_Store"]
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
autodoc_typehints = "none"
napoleon_google_docstring = False
napoleon_numpy_docstring = True

html_theme = "alabaster"
html_static_path = ["_static"]
html_title = f"PRNF {release}"
html_theme_options = {"description": "Phase Retrieval Network Framework",
                      "fixed_sidebar": True}
