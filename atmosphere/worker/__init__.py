"""The cloud runtime: a worker process that runs an app's tasks (``atmosphere cloud``).

``cloud.py`` holds the process (life cycle, slots, running a job), with its rooms:
``stream.py`` the inbox stream (and a default cloud's job on its thread), ``record.py`` the
cloud's record and the writes that carry it (heartbeat), ``completions.py`` the completions.
``inbox.py`` is what the cloud holds and why, ``execution.py`` how a handler's end becomes a
``Finish``, ``threads.py`` the threads jobs run on. Nothing is imported here, so loading the
public API does not load the runtime.
"""
