"""The pipeline's one error: a body that is not a Telesign callback."""


class TspipeError(Exception):
    """Base of every error tspipe raises on purpose; its message is meant for a user."""


class InvalidCallback(TspipeError, ValueError):
    """A body that cannot become an event. The message says what is wrong and where."""
