"""Text from outside made safe to store: any database's text columns, and each column's size.

PostgreSQL text cannot hold NUL, and no database driver can encode a lone
surrogate (JSON's ``"\\ud800"``); either turns an insert into an error that
repeats on every retry. Values are cleaned and cut to their column here,
once, rather than with lengths scattered through the services.
"""

from typing import Any

from django.db import models

REPLACEMENT = "\ufffd"


def clean_text(value: Any) -> str:
    """Return ``value`` as text any database column can hold (no NUL, encodable as UTF-8)."""
    text = "" if value is None else value if isinstance(value, str) else str(value)
    if not text.isascii():
        text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates become "?"
    return text.replace("\x00", REPLACEMENT)


def fit(model: type[models.Model], field_name: str, value: Any) -> str:
    """Return ``value`` cleaned and cut to the max_length of ``model.field_name``."""
    text = clean_text(value)
    max_length = model._meta.get_field(field_name).max_length
    return text[:max_length] if max_length else text
