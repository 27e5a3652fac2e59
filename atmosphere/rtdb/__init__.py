"""Firebase Realtime Database semantics, pure: keys and paths, values, order, queries, the
JSON tree, push ids and ETags.

One copy for everyone: the client (``atmosphere.db``), ``MemoryDatabase`` and the embedded
server (``atmosphere.localdb``) all import it, so they cannot disagree. It imports nothing else
of the package (an import contract in ``nox -s lint``).
"""
