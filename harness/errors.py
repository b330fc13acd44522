"""The one exception type that reaches users as a single clear line."""


class UplabError(Exception):
    """A user-facing error: one line naming the problem and the fix."""
