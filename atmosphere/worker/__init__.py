"""The cloud runtime: a worker process that runs an app's tasks (``atmosphere cloud``).

``cloud.py`` holds the process (heartbeat, inbox stream, slots, completion), ``inbox.py`` what
the cloud holds and why, ``execution.py`` how a handler's end becomes a ``Finish``,
``threads.py`` the threads jobs run on. Nothing is
imported here, so loading the public API does not load the runtime.
"""
