"""Chaos, soak and backlog suites: real processes, injected faults, one table of results.

``python -m chaos run --minutes 5`` runs the embedded database, two dispatchers and a few
clouds under a mixed stream of jobs while it kills and freezes them; ``soak`` runs the stream
with lease and heartbeat intervals scaled down; ``backlog`` queues 100,000 jobs, then drains
them. Each prints one table and writes it as JSON (docs/reliability.md has the figures).
"""
