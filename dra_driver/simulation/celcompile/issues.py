"""Compile problems in the text kube-apiserver prints: ``ERROR: <input>:LINE:COL: message``, the line and a
caret under the column, one block per problem, sorted by position.

cel-go counts columns in characters (runes) and draws a wide dot for each character that is more than one
byte in UTF-8, so the caret lines up under East Asian and accented text too.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_REPORTED = 100  # cel-go's maxErrorsToReport


@dataclass(frozen=True)
class Issue:
    """One problem at a 0-based character offset into the expression."""

    offset: int
    message: str


class CompileError(Exception):
    """Parsing, macro expansion or type checking found problems; ``issues`` are all of them."""

    def __init__(self, issues: list[Issue]) -> None:
        super().__init__(issues[0].message if issues else "")
        self.issues = issues


def position(text: str, offset: int) -> tuple[int, int]:
    """(1-based line, 0-based column) of ``offset``, in characters."""
    offset = max(0, min(offset, len(text)))
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start


def _wide(char: str) -> bool:
    return len(char.encode("utf-8", "surrogatepass")) > 1


def _render(text: str, issue: Issue) -> str:
    if not text:  # cel-go has no line to show, and reports the end of nothing as column 0
        return f"ERROR: <input>:1:0: {issue.message}"
    line, column = position(text, issue.offset)
    snippet = text.split("\n")[line - 1].replace("\t", " ")
    head = f"ERROR: <input>:{line}:{column + 1}: {issue.message}"
    dots = "".join("\uff0e" if _wide(c) else "." for c in snippet[:column])
    caret = "\uff3e" if column < len(snippet) and _wide(snippet[column]) else "^"
    return f"{head}\n | {snippet}\n | {dots}{caret}"


def render(text: str, issues: list[Issue]) -> str:
    """All ``issues`` as the real server joins them (sorted by line and column, at most 100)."""
    ordered = sorted(issues, key=lambda i: position(text, i.offset))
    blocks = [_render(text, issue) for issue in ordered[:MAX_REPORTED]]
    if len(ordered) > MAX_REPORTED:
        blocks.append(f"{len(ordered) - MAX_REPORTED} more errors were truncated")
    return "\n".join(blocks)
