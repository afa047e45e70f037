"""The one exception type that commands turn into a one-line message and exit code 1."""


class DsdError(Exception):
    """A user-facing error: bad input, missing data, an impossible request."""
