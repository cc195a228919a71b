"""``covault demo``: run every capability on built-in sample data.

Each step is a module in this package with ``TITLE`` and ``run(ctx) -> dict``; the
summary of every step lands in ``OUT/summary.json`` and ``OUT/summary.md``, and
``OUT/index.html`` links each step's files (:mod:`covault.demo.report`).
"""
