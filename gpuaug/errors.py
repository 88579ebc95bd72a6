"""Errors raised for bad input data."""

from __future__ import annotations

from pathlib import Path


class FaceDataError(ValueError):
    """Bad input data: names the file, the field (if any), what was expected and what was found.

    ``FaceDataError(text)`` alone (no path) is how ``DataLoader`` re-raises a worker's error in the main
    process; it keeps the class, so ``except FaceDataError`` works with ``num_workers > 0`` too.

    Args:
        path: the file (or, alone, the whole message).
        message: what was expected and what was found.
        field: the field of the file, if any.
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


class BatchError(ValueError):
    """A batch that cannot be augmented: names the field, the sample and what was expected and found.

    Args:
        field: the batch's field (``"landmarks2d"``, ``"params.angle"``, ``"labels.expression"``...).
        message: what was expected and what was found.
        sample: the sample's index in the batch, when one sample is at fault.
        key: that sample's (video, frame), when known.
    """

    def __init__(self, field: str, message: str, sample: int | None = None, key: tuple[int, int] | None = None):
        self.field, self.sample, self.key, self.reason = field, sample, key, message
        where = f"field '{field}'" if sample is None else f"sample {sample}" + (
            f" (video {key[0]}, frame {key[1]})" if key is not None else "") + f", field '{field}'"
        super().__init__(f"{where}: {message}")
