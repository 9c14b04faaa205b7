"""vLLM Desk benchmarks: every figure measured beside its baseline in the same run.

Run ``python -m bench`` (``make bench``) for everything, ``--quick`` for a few-minute pass, ``--only NAME``
for one benchmark. Results go to ``bench/results/latest.json``, plots to ``docs/bench/*.png`` and the
summary to ``docs/benchmarks.md``. See :mod:`bench.registry` for the list of benchmarks.
"""
