"""Ground-truth grades from a ``labels.csv`` beside the images, keyed by file stem, for the browser."""

from __future__ import annotations

from pathlib import Path

from retinaview.core.common.labels import read_label_rows

LABEL_FILE = "labels.csv"


def read_labels(folder: str | Path, num_classes: int = 5) -> dict[str, int]:
    """Grades by image stem; {} when the folder has no ``labels.csv``.

    Raises `DataError` (one line naming the file and the line) for a CSV that cannot be used.
    """
    path = Path(folder) / LABEL_FILE
    if not path.is_file():
        return {}
    return {
        Path(row.image).stem if Path(row.image).suffix else row.image: row.grade
        for row in read_label_rows(path, num_classes)
    }
