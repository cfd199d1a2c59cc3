"""How wide `summary.md` renders on GitHub: table cells over a character budget, via cmarkgfm.

GitHub's step summary and Markdown views are a 1012 px column; a table wider than that cuts
its last column and wraps long cells over several lines (issue 17, item 8). Text inside a
`<details>` block does not count: it is folded away and is not a table.
"""

from __future__ import annotations

from html.parser import HTMLParser

import cmarkgfm
from cmarkgfm.cmark import Options

CELL_BUDGET = 80
"""Characters a table cell may show outside a `<details>` block."""


def github_html(markdown: str) -> str:
    """`markdown` as GitHub renders it (GFM tables; raw HTML such as `<details>` kept)."""
    html: str = cmarkgfm.github_flavored_markdown_to_html(
        markdown, options=Options.CMARK_OPT_UNSAFE
    )
    return html


class _Cells(HTMLParser):
    """Collects the text of every table cell, and whether it sits inside `<details>`."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.details = 0
        self.cell: list[str] | None = None
        self.cells: list[tuple[str, bool]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "details":
            self.details += 1
        elif tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "details":
            self.details -= 1
        elif tag in ("td", "th") and self.cell is not None:
            self.cells.append(("".join(self.cell).strip(), self.details > 0))
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def table_cells(markdown: str) -> list[tuple[str, bool]]:
    """(text, inside a details block) of every rendered table cell of `markdown`."""
    parser = _Cells()
    parser.feed(github_html(markdown))
    parser.close()
    return parser.cells


def wide_cells(markdown: str, budget: int = CELL_BUDGET) -> list[str]:
    """The rendered table cells outside `<details>` longer than `budget` characters."""
    return [text for text, folded in table_cells(markdown) if not folded and len(text) > budget]


def details_text(markdown: str) -> str:
    """The text GitHub shows inside the `<details>` blocks of `markdown`, tags stripped."""
    parser = _Folded()
    parser.feed(github_html(markdown))
    parser.close()
    return "".join(parser.text)


class _Folded(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.details = 0
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.details += tag == "details"

    def handle_endtag(self, tag: str) -> None:
        self.details -= tag == "details"

    def handle_data(self, data: str) -> None:
        if self.details:
            self.text.append(data)
