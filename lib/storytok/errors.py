"""One exception type for every user-facing failure.

Stage scripts catch `StorytokError` and print its message as a single line, so each
message must name the file, what is wrong and what to do, and fit on one line.
"""


class StorytokError(ValueError):
    """A problem with the user's input or environment, explained in one line."""


class StorytokWarning(UserWarning):
    """Something the user should know that does not stop the work (e.g. a vocab not reached)."""
