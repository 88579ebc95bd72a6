"""What the readers share: finding the image beside an annotation file."""

from __future__ import annotations

from pathlib import Path

from gpuaug.errors import FaceDataError

#: Image extensions the readers look for beside an annotation, in this order.
IMAGE_EXTENSIONS = (".jpg", ".png", ".jpeg", ".bmp", ".JPG", ".PNG", ".JPEG")


def sibling_image(annotation: Path) -> Path:
    """The image with ``annotation``'s stem in its folder; FaceDataError naming the annotation when none is."""
    for ext in IMAGE_EXTENSIONS:
        candidate = annotation.with_suffix(ext)
        if candidate.is_file():
            return candidate
    raise FaceDataError(annotation, f"no image beside it (looked for {annotation.stem} with "
                                    f"{', '.join(IMAGE_EXTENSIONS[:4])})")


def annotation_files(root: str | Path, suffix: str) -> list[Path]:
    """Every ``*{suffix}`` file under ``root`` (sorted, recursive); FaceDataError when there is none."""
    root = Path(root)
    if not root.is_dir():
        raise FaceDataError(root, "expected a directory")
    files = sorted(root.rglob(f"*{suffix}"))
    if not files:
        raise FaceDataError(root, f"no {suffix} files under it")
    return files
