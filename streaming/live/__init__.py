"""Browsers out: groups, typed messages, the after-commit broadcast, WebSocket sockets, routing."""
