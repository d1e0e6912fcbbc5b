"""Structured log lines: ``event=<name> key=value ...`` (see docs/architecture.md)."""

import logging


def log_event(logger: logging.Logger, event: str, *, level: int = logging.INFO, **fields) -> None:
    """Log one structured event. Never pass secrets or credentials as fields."""
    parts = [f"event={event}"]
    for name, value in fields.items():
        if isinstance(value, float):
            value = f"{value:.3f}"
        text = str(value)
        if not text or any(c.isspace() or c in '"=' for c in text):
            text = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        parts.append(f"{name}={text}")
    logger.log(level, " ".join(parts))
