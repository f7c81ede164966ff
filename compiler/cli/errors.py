"""One error line, a non-zero exit, and no traceback unless --debug."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Sequence


def guarded(prog: str, body: Callable[[], int], argv: Sequence[str]) -> int:
    """Run `body`; turn any exception into `prog: error: <one line>` and exit status 1."""
    debug = "--debug" in argv
    _exit_on_sigterm()
    _one_line_warnings(prog)
    try:
        return body()
    except BrokenPipeError:  # stdout closed early (e.g. `| head`): stop quietly, as Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except SystemExit as e:  # argparse usage errors already printed their line
        return e.code if isinstance(e.code, int) else 1
    except BaseException as e:
        if debug:
            raise
        lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
        message = lines[0] if lines else type(e).__name__
        if len(lines) > 1 and ":" in lines[0] and lines[0].split(":")[-1].strip().isdigit():
            message = f"{lines[0]}: {lines[-1]}"  # xDSL's "file:line:col" + context + message
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 1


def _exit_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C (SystemExit 143), so staged outputs are removed on the way out."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (e.g. called from a test runner thread)
        pass


def _one_line_warnings(prog: str) -> None:
    """Print wisp's own warnings as `PROG: warning: message` (no source line)."""
    import warnings

    from compiler.errors import WispWarning

    default = warnings.showwarning
    if getattr(default, "_wisp", False):
        return

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
        if issubclass(category, WispWarning):
            print(f"{prog}: warning: {message}", file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    show._wisp = True  # type: ignore[attr-defined]
    warnings.showwarning = show
