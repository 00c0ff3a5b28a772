"""One error family for everything a user can get wrong.

Every message says what went wrong, where (subject, trial, file, field) and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path


@dataclass
class PimskError(Exception):
    """A user-facing error: one clear line, no traceback unless ``--debug``.

    Attributes name the place of the problem; any of them may be empty.
    """

    message: str
    subject: str | None = None
    trial: str | None = None
    file: str | Path | None = None
    field: str | None = None
    hint: str | None = None
    extra: dict[str, str] = dc_field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.__str__())

    def where(self) -> str:
        parts = []
        if self.subject:
            parts.append(f"subject {self.subject}")
        if self.trial:
            parts.append(f"trial {self.trial}")
        if self.file:
            parts.append(f"file {self.file}")
        if self.field:
            parts.append(f"field {self.field}")
        return ", ".join(parts)

    def __str__(self) -> str:
        where = self.where()
        text = f"{where}: {self.message}" if where else self.message
        if self.hint:
            text += f" ({self.hint})"
        return text

    def located(self, **where: str | Path | None) -> "PimskError":
        """Return the same error with missing location fields filled in."""
        for key, value in where.items():
            if value is not None and getattr(self, key) in (None, ""):
                setattr(self, key, value)
        self.args = (self.__str__(),)
        return self


class C3DError(PimskError):
    """A C3D file could not be read or lacks what is asked of it."""


class FileFormatError(PimskError):
    """A TRC/MOT/STO/XML/ANC file is malformed."""


class ConfigError(PimskError):
    """A subject or workflow configuration is invalid."""


class OpenSimToolError(PimskError):
    """An OpenSim tool failed or wrote no output."""
