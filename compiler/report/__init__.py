"""`wisp report OUTDIR`: one self-contained HTML page (and PNGs) about a compiled program.

load (check the OUTDIR) → measure (one traced interpreter run) → figures (per layer by precision,
queue timeline, roofline) → plots (PNGs) → page/build (HTML) → write (atomic, guarded).
"""
