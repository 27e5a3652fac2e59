"""The RTDB client: configuration -> a connected Database, plus a fast SSE listener."""
