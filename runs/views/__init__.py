"""Views by concept: ``pages`` (HTML), ``api`` (JSON state), ``viewers`` (viewer endpoints)."""
