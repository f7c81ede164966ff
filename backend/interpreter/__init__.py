"""The NPU interpreter: functional semantics, event-driven timing, checks, report and trace.

``run(program, inputs, config)`` returns a `Result` with the output arrays, a `Report` and
(optionally) Chrome/Perfetto trace events, one track per queue.
"""

from backend.interpreter.engine import Result, run
from backend.interpreter.report import Report
from backend.interpreter.resident import ResidentDram

__all__ = ["Report", "ResidentDram", "Result", "run"]
