"""cel-python's CEL grammar, built into a Lark parser that lexes as cel-go's does.

Two differences from cel-python's own parser instance matter for compile-time checks: cel-python lexes
``1.`` as a double, where cel-go requires digits after the point (so ``1.size()`` is a call on an int and
``x == 1.`` is a syntax error), and it turns ``true``/``false`` identifiers into literal tokens that have
lost their positions, which messages need. This builds a separate parser from the same grammar file with
both corrected, once per process.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import celpy
from lark import Lark, Token

_FLOAT_WITHOUT_FRACTION = '/-?/ DIGIT+ "." DIGIT* EXPONENT?'
_FLOAT_WITH_FRACTION = '/-?/ DIGIT+ "." DIGIT+ EXPONENT?'


def _boolean_literals(token: Token) -> Token:
    """``true`` and ``false`` are lexed as identifiers; make them literals, keeping their position."""
    if token.value in ("true", "false"):
        return Token.new_borrow_pos("BOOL_LIT", token.value, token)
    return token


def _grammar() -> str:
    text = (Path(celpy.__file__).parent / "cel.lark").read_text()
    return text.replace(_FLOAT_WITHOUT_FRACTION, _FLOAT_WITH_FRACTION)


@functools.cache
def parser() -> Lark:
    """The parser (thread-safe to use: Lark's LALR parser keeps no state between parses)."""
    return Lark(
        _grammar(),
        parser="lalr",
        start="expr",
        g_regex_flags=re.M,
        lexer_callbacks={"IDENT": _boolean_literals},
        propagate_positions=True,
        maybe_placeholders=False,
        priority="invert",
    )
