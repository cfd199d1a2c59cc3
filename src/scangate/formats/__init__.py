"""Report formats, behind one interface and a closed registry."""

from __future__ import annotations

from scangate.formats.interface import Formatter, Report

__all__ = ["Formatter", "Report", "formatter"]


def formatter(name: str) -> Formatter:
    """Return the formatter registered as `name` (one of `policy.ALL_FORMATS`)."""
    from scangate.formats.gitlab_dast import GitLabDastFormatter
    from scangate.formats.json import JsonFormatter
    from scangate.formats.junit import JUnitFormatter
    from scangate.formats.markdown import MarkdownFormatter
    from scangate.formats.sarif import SarifFormatter

    registry: dict[str, type[Formatter]] = {
        "sarif": SarifFormatter,
        "junit": JUnitFormatter,
        "gitlab-dast": GitLabDastFormatter,
        "json": JsonFormatter,
        "markdown": MarkdownFormatter,
    }
    try:
        return registry[name]()
    except KeyError:
        raise ValueError(f"unknown report format {name!r}") from None
