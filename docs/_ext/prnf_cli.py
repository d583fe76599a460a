"""``{prnf-cli}``: the command-line reference, rendered from ``prnf_core.cli.build_parser()``.

Every command and subcommand of ``prnf`` becomes a section holding its ``--help`` text, so
the page says exactly what the installed parser says. Used by ``docs/cli.md``::

    ```{prnf-cli}
    ```
"""
from __future__ import annotations

import argparse
import os

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

#: The help is formatted for this terminal width (argparse reads ``COLUMNS``).
WIDTH = "90"


def commands(parser, prefix="prnf"):
    """``(name, parser)`` for ``parser`` and every subcommand below it, depth first."""
    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, f"{prefix} {name}")


class PrnfCli(SphinxDirective):
    has_content = False

    def run(self):
        from prnf_core.cli import build_parser
        previous = os.environ.get("COLUMNS")
        os.environ["COLUMNS"] = WIDTH
        try:
            found = [(name, sub.format_help()) for name, sub in commands(build_parser())]
        finally:
            if previous is None:
                os.environ.pop("COLUMNS", None)
            else:
                os.environ["COLUMNS"] = previous
        sections = []
        for name, text in found:
            section = nodes.section(ids=[nodes.make_id(name)], names=[nodes.fully_normalize_name(name)])
            section += nodes.title(text=name)
            section += nodes.literal_block(text.rstrip(), text.rstrip(), language="text")
            self.state.document.note_implicit_target(section, section)
            sections.append(section)
        return sections


def setup(app):
    app.add_directive("prnf-cli", PrnfCli)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
