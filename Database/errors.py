"""Errors raised by the database layer."""

from __future__ import annotations

__all__ = ["DatabaseError", "UnsafeIdentifierError"]


class DatabaseError(RuntimeError):
    """The database could not be reached or a statement failed.

    Messages never contain a password: URLs are rendered with the password masked and
    driver messages are scrubbed before they are wrapped.
    """


class UnsafeIdentifierError(ValueError):
    """A table or column name from the configuration is not a safe SQL identifier."""
