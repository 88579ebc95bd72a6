"""Errors raised for bad input data."""

from __future__ import annotations

from pathlib import Path


class FaceDataError(ValueError):
    """Bad input data: names the file, the field (if any), what was expected and what was found."""

    def __init__(self, path: str | Path, message: str, field: str | None = None) -> None:
        self.path = str(path)
        self.field = field
        self.reason = message
        where = f"{self.path}: field '{field}'" if field else self.path
        super().__init__(f"{where}: {message}")
