"""The one exception type the CLI turns into a one-line error message."""


class DerainError(Exception):
    """A user-facing problem (bad file, bad folder layout, bad config): one clear line."""


def first_line(e: BaseException, limit: int | None = None) -> str:
    """The first line of ``e``'s message (at most ``limit`` characters), else its type's name."""
    return (str(e).strip() or type(e).__name__).splitlines()[0][:limit]
