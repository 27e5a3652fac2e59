"""The jobs benchmark's pure parts: hop breakdown of a round trip, medians of runs."""

from __future__ import annotations

import dataclasses
import math

from bench.jobs import Sample, hop_means, median_sample
from bench.workloads import Trip


def test_hop_means_split_each_trip_at_the_record_timestamps() -> None:
    trips = [Trip("a", 1000.0, 1010.0, 10.0), Trip("b", 2000.0, 2006.0, 6.0)]
    records = {
        "a": {"submitted": 1001, "assigned": 1004, "started": 1005, "finished": 1007},
        "b": {"submitted": 2001, "assigned": 2002, "started": 2003, "finished": 2004},
    }
    hops = hop_means(trips, records)
    assert hops == {
        "hop_submit_ms": 1.0,
        "hop_dispatch_ms": 2.0,  # (3 + 1) / 2
        "hop_pickup_ms": 0.5,  # the cloud's rounded start counts half a ms earlier
        "hop_complete_ms": 2.0,  # (2.5 + 1.5) / 2
        "hop_reply_ms": 2.5,  # (3 + 2) / 2
    }
    assert sum(hops.values()) == (10.0 + 6.0) / 2  # the hops add up to the mean round trip


def test_hop_means_skip_trips_without_a_complete_record() -> None:
    trips = [Trip("a", 0.0, 5.0, 5.0), Trip("gone", 0.0, 9.0, 9.0)]
    records = {"a": {"submitted": 1, "assigned": 2, "started": 3, "finished": 4}, "x": 3}
    assert hop_means(trips, records)["hop_reply_ms"] == 1.0
    assert all(math.isnan(v) for v in hop_means(trips[1:], records).values())


def test_median_sample_takes_each_figure_separately() -> None:
    names = [f.name for f in dataclasses.fields(Sample)]
    runs = [Sample(**dict.fromkeys(names, float(v))) for v in (3, 1, 2)]
    runs[0] = dataclasses.replace(runs[0], awaited_rate=100.0)
    median = median_sample(runs)
    assert median.rpc_p50_ms == 2.0
    assert median.awaited_rate == 2.0  # (100, 1, 2) -> 2


def test_sub_millisecond_hops_do_not_come_out_negative() -> None:
    # Every hop 0.3 ms, the clocks read as they are: the server truncates, the cloud rounds.
    trips, records = [], {}
    for i in range(1000):
        t0 = 1_000_000.0 + i * 1.37  # every phase within the millisecond
        marks = [t0 + 0.3 * k for k in range(6)]
        trips.append(Trip(f"j{i}", marks[0], marks[5], marks[5] - marks[0]))
        records[f"j{i}"] = {
            "submitted": int(marks[1]),
            "assigned": int(marks[2]),
            "started": round(marks[3]),
            "finished": int(marks[4]),
        }
    hops = hop_means(trips, records)
    assert all(abs(v - 0.3) < 0.05 for v in hops.values()), hops
