"""Development helpers shared by tests, bench and chaos: real processes on free loopback ports
(``devkit.procs``) and a dispatcher driven by hand on ``MemoryDatabase``
(``devkit.memory_dispatcher``). Not part of the ``atmosphere`` package; it never imports
``tests`` (import contract in pyproject.toml)."""
