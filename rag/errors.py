"""Every error whose message is written for people, under one base class.

Adapters (the CLI, the console chat, the Discord bot) catch `UserError` once and show its message
as one line; anything else is a bug and keeps its traceback (in the log).
"""


class UserError(Exception):
    """An error with a message that says what went wrong and what to do; safe to show."""


class QuestionError(UserError, ValueError):
    """The question itself is unusable (empty, too long); the message says what to do."""


class SettingsError(UserError):
    """Invalid configuration, with a message that names the setting and the fix."""


class DocumentError(UserError):
    """One file cannot be ingested; the message says why and what to do."""


class StoreError(UserError):
    """The store cannot be opened or used; the message names the fix."""


class EmbeddingError(UserError):
    """The embedding model cannot be loaded or used."""


class ModelError(UserError):
    """A model cannot be used; the message says how to fix it."""


class GenerationError(UserError):
    """The model could not produce an answer; the message is safe to show."""


class PromptError(UserError):
    """A prompt file is missing or malformed."""


class QuestionFileError(UserError):
    """A question set (JSONL) cannot be read; the message names the file and line."""


class DecisionModelError(UserError):
    """The fitted answer decisions (rag/answering/decisions.json) are missing or unreadable."""
