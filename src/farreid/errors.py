"""The error type for problems a user can fix (a bad path, key, checkpoint or data tree).

The CLI prints these as one line and exits with status 2; anything else is a bug and keeps its traceback.
"""

_WORKER_PREFIX = "Caught "  # torch re-raises a DataLoader worker's error as type(error)("Caught ... Original Traceback")


class FarreidError(Exception):
    """A user-actionable problem; the message names the offending path, key or value."""

    def __init__(self, *args: object) -> None:
        if len(args) == 1 and isinstance(args[0], str):
            args = (_own_message(args[0]),)
        super().__init__(*args)


def _own_message(message: str) -> str:
    """The error's own line when torch hands us a worker process's traceback text (frames decoded with
    data.workers > 0), so the user still gets one line."""
    if not (message.startswith(_WORKER_PREFIX) and "\nOriginal Traceback" in message):
        return message
    last = message.rstrip().splitlines()[-1]
    kind, sep, own = last.partition(": ")
    return own if sep and kind.rpartition(".")[2].endswith("Error") else last
