"""The embedded Firebase-compatible RTDB server. Never imports the rest of Atmosphere."""
