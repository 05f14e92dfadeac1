"""Structured logging: each line is attributed by the host to its run, step and attempt."""

from wit_world.imports import log as wit


def _emit(level: str, message: str) -> None:
    wit.log(getattr(wit.Level, level), str(message))


def trace(message: str) -> None:
    """Logs at level trace."""
    _emit("TRACE", message)


def debug(message: str) -> None:
    """Logs at level debug."""
    _emit("DEBUG", message)


def info(message: str) -> None:
    """Logs at level info."""
    _emit("INFO", message)


def warn(message: str) -> None:
    """Logs at level warn."""
    _emit("WARN", message)


def error(message: str) -> None:
    """Logs at level error."""
    _emit("ERROR", message)
