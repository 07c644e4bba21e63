"""Errors that adapters show to people as they are (no traceback)."""


class QuestionError(ValueError):
    """The question itself is unusable (empty, too long); the message says what to do."""
