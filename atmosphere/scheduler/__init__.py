"""The dispatcher: routing, chains, retries, timeouts, periodic schedules and the leader lease."""
