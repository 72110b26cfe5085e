"""Pure statistics for Pulse: scoring, summaries, control charts, trend evidence, shrinkage.

Nothing in this package imports Django; plain numbers in, plain dataclasses out, so every piece
can be unit-tested and benchmarked alone (see ``bench/detection.py`` and ``docs/statistics.md``).
None of these functions knows about k: callers pass only figures that the anonymity guard
(``wellbeing.guard``) allows, and mark hidden cycles as missing (``None``).
"""
