"""Real-time events (what they promise: docs/events.md): the socket (`ws`), the per-process
bus that wakes it (`bus`), and the badge fragment a page fetches for the words (`views`)."""

from portal.realtime.ws import init_app

__all__ = ["init_app"]
