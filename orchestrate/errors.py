"""Errors a person can act on: the message says what failed, where, and what to do."""


class UserError(RuntimeError):
    """Printed without a traceback; the command exits with status 2."""
