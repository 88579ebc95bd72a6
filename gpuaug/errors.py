"""Errors raised for bad input data."""

from __future__ import annotations

from pathlib import Path


class FaceDataError(ValueError):
    """Bad input data: names the file, the field (if any), what was expected and what was found.

    ``FaceDataError(text)`` alone (no path) is how ``DataLoader`` re-raises a worker's error in the main
    process; it keeps the class, so ``except FaceDataError`` works with ``num_workers > 0`` too.
    """

    def __init__(self, path: str | Path, message: str | None = None, field: str | None = None) -> None:
        if message is None:
            self.path, self.field, self.reason = "", None, str(path)
            super().__init__(str(path))
            return
        self.path = str(path)
        self.field = field
        self.reason = message
        where = f"{self.path}: field '{field}'" if field else self.path
        super().__init__(f"{where}: {message}")
