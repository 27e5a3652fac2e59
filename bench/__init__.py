"""Atmosphere benchmarks: ``python -m bench [part ...]`` (``nox -s bench``)."""
