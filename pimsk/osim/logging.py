"""Keep OpenSim quiet: no opensim.log file sink, warnings only (or a log file of our choosing)."""

from __future__ import annotations

from pathlib import Path

_done = False


def quiet_opensim(level: str = "warn", log_file: str | Path | None = None) -> None:
    """Set OpenSim's log level, remove its default file sink, optionally log to ``log_file``."""
    global _done
    import opensim as osim

    osim.Logger.removeFileSink()
    osim.Logger.setLevelString(level)
    if log_file is not None:
        osim.Logger.addFileSink(str(log_file))
    _done = True
