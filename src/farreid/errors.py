"""The error type for problems a user can fix (a bad path, key, checkpoint or data tree).

The CLI prints these as one line and exits with status 2; anything else is a bug and keeps its traceback.
"""


class FarreidError(Exception):
    """A user-actionable problem; the message names the offending path, key or value."""
