"""The user-facing error type: one clear line that names the place (file:line:col, op, pass)."""


class WispError(Exception):
    """An error caused by the user's input (a model, a file, an option), reported without a traceback."""


class WispWarning(UserWarning):
    """Something suspicious in the user's input that does not stop the work (printed as one line)."""
