"""The one exception type the CLI turns into a one-line error message."""


class DerainError(Exception):
    """A user-facing problem (bad file, bad folder layout, bad config): one clear line."""
