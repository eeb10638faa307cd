"""RedactingFilter: a logging.Filter that redacts PII from log records before any handler sees them.

Install it on the handlers that write somewhere (a filter on a handler sees records of every logger
that propagates to it; a filter on a logger sees only that logger's own calls)::

    handler = logging.StreamHandler()
    handler.addFilter(RedactingFilter())
    logging.basicConfig(handlers=[handler], level=logging.INFO)
"""

from __future__ import annotations

import logging

from .redactor import Redactor, default_redactor


class RedactingFilter(logging.Filter):
    """Replaces a record's message (arguments merged in) and traceback text by their redacted form.

    The analyzer is built when the filter is made, so a missing privacy extra raises MissingDependency
    at set-up instead of letting records through unredacted.
    """

    def __init__(self, redactor: Redactor | None = None, name: str = ""):
        super().__init__(name)
        self.redactor = (redactor or default_redactor()).load()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redactor.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor.redact(record.exc_text)
        return True
