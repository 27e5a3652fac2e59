"""The original README's Hello World / RPC usage model, in its own words: ``rain_maker`` and
``rain_cloud``, ``init(name, callback)``, a ``handle_jobs`` map whose handlers finish with
``done_with(ticket, error, results)``, and ``submit(job, callback)`` with ``callback(error, data)``.

Run:  python examples/original_rpc.py
(it starts `atmosphere dispatcher`, which starts the embedded database; the rain cloud runs in
this process, as `rainCloud.init` did in a Node one)
"""

from __future__ import annotations

import threading
from typing import Any

from _local import local_atmosphere

from atmosphere import JobError, Ticket, rain_cloud, rain_maker

# ---- Remote (fulfills request) -------------------------------------------------------------


# [2.] Local Function to Execute (called remotely)
# -- ticket = {type, name, id}
# -- data = copy of data object passed to submit
def local_function(ticket: Ticket, data: Any) -> None:
    print(f"Doing {data['msg']} work here!", flush=True)
    error = None
    results = "This string was generated inside the work function"
    rain_cloud.done_with(ticket, error, results)


def lookup_user(ticket: Ticket, data: Any) -> None:
    # An error may be any JSON value: the caller gets it as is.
    rain_cloud.done_with(ticket, {"code": 404, "reason": f"no user {data['user']}"}, None)


# [3.] Which possible jobs should this server register to handle?
handle_jobs = {
    "remoteFunction": local_function,  # object key must match job.type
    "lookupUser": lookup_user,
}


def main() -> None:
    finished = threading.Event()

    # [4.] Connect to Atmosphere (the rain cloud)
    def responder_ready(err: Exception | None) -> None:
        if err is not None:
            print("Could not initialize.", err)

    rain_cloud.init("responder", handle_jobs, responder_ready)

    # ---- Local (makes request) -------------------------------------------------------------

    def lookup_done(error: JobError | None, data: Any) -> None:
        print("lookupUser answered with the error:", error.error if error else None)
        finished.set()

    def callback(error: JobError | None, data: Any) -> None:
        # [4.] Job is complete!
        if error is not None:
            print("Error occurred executing function.", error)
        else:
            print("RPC completed and returned:", data)
        job = {"type": "lookupUser", "name": "user1", "data": {"user": "ada"}, "timeout": 30}
        rain_maker.submit(job, lookup_done)

    # [2.] Connect to Atmosphere (the rain maker)
    def requester_ready(err: Exception | None) -> None:
        if err is not None:
            print("Could not initialize.", err)
            finished.set()
            return
        # [3.] Submit job (make the remote procedure call)
        job = {
            "type": "remoteFunction",  # the job type/queue name
            "name": "special job",  # name for this work request (passed to remote router)
            "data": {"msg": "useful"},  # arbitrary serializable object to pass to remote
            "timeout": 30,  # seconds
        }
        rain_maker.submit(job, callback)

    rain_maker.init("requester", requester_ready)
    finished.wait(60)


if __name__ == "__main__":
    with local_atmosphere(tasks=None):
        try:
            main()
        finally:
            rain_maker.close()
            rain_cloud.close()
