"""Validation of table and column names that come from configuration.

Names are always passed to SQLAlchemy as identifiers (quoted by the dialect when needed);
this check is a second wall: names that look like SQL rather than a name are refused before
any statement is built, so a config value such as ``samples; DROP TABLE x`` executes nothing.
"""

from __future__ import annotations

import re

from .errors import UnsafeIdentifierError

__all__ = ["split_table_name", "validate_identifier"]

# PostgreSQL truncates longer names silently (NAMEDATALEN - 1).
MAX_IDENTIFIER_LENGTH = 63
_FORBIDDEN = re.compile(r"""[\x00-\x1f\x7f"'`;\\]|--|/\*|\*/""")


def validate_identifier(name: object, what: str = "identifier") -> str:
    """Return ``name`` when it is a safe SQL identifier, else raise.

    Letters, digits, spaces and punctuation such as ``#`` or ``-`` are allowed (a CSV header
    like ``Axis #1`` is a valid column name); quotes, semicolons, backslashes, control
    characters and SQL comment markers are not.

    Raises:
        UnsafeIdentifierError: the name is empty, too long or contains a forbidden sequence.
    """
    if not isinstance(name, str) or not name.strip():
        raise UnsafeIdentifierError(f"{what} must be a non-empty name, got {name!r}")
    if len(name) > MAX_IDENTIFIER_LENGTH:
        raise UnsafeIdentifierError(
            f"{what} {name!r} is longer than {MAX_IDENTIFIER_LENGTH} characters"
        )
    bad = _FORBIDDEN.search(name)
    if bad:
        raise UnsafeIdentifierError(
            f"{what} {name!r} is not a safe SQL identifier (contains {bad.group()!r}); "
            "use the plain table or column name, without quotes, semicolons or comments"
        )
    return name


def split_table_name(name: str) -> tuple[str | None, str]:
    """Split ``schema.table`` into ``(schema, table)``; a name without a dot has no schema.

    Raises:
        UnsafeIdentifierError: either part is not a safe identifier, or there is more than one dot.
    """
    validate_identifier(name, "table name")
    parts = name.split(".")
    if len(parts) > 2:
        raise UnsafeIdentifierError(
            f"table name {name!r} has more than one '.'; write it as 'schema.table' or 'table'"
        )
    if len(parts) == 2:
        return validate_identifier(parts[0], "schema name"), validate_identifier(
            parts[1], "table name"
        )
    return None, name
