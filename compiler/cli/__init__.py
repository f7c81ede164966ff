"""Command-line front doors: `wisp` and `wisp-opt`."""
