"""The demo behind ``atmosphere demo``: a dispatcher, clouds, the Weather Station and real jobs."""
