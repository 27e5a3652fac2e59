"""Put on a child's PYTHONPATH by ``bench.trace``: trace the process when ``ATMOSPHERE_TRACE`` is set."""

import os

if os.environ.get("ATMOSPHERE_TRACE"):
    from bench import tracepoints

    tracepoints.install(os.environ["ATMOSPHERE_TRACE"])
