"""Helpers for the tests, benchmarks and docs; the workflow never imports them.

- ``siteserver`` assemble and serve a built site on loopback (tests, benchmarks, screenshot)
- ``synthetic``  synthetic map data at any scale (benchmark, screenshot)
- ``perf``       timing, peak memory and synthetic matrices for the benchmarks
- ``simulated_learners``  learners with a known knowledge field (benchmarks/knowledge.py)
"""
