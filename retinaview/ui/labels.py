"""Ground-truth grades for the browser, keyed by file stem, from the folder's labels CSV.

The file is found as training finds it (`retinaview.core.common.labels.find_labels_csv`: ``labels.csv``,
EyePACS's ``trainLabels.csv``, APTOS's ``train.csv``, or the folder's only CSV).
"""

from __future__ import annotations

from pathlib import Path

from retinaview.core.common.labels import find_labels_csv, read_label_rows


def read_labels(folder: str | Path, num_classes: int = 5) -> dict[str, int]:
    """Grades by image stem; {} when the folder has no labels CSV.

    Raises `DataError` (one line naming the file and the line) for a CSV that cannot be used.
    """
    path = find_labels_csv(folder)
    if path is None:
        return {}
    return {
        Path(row.image).stem if Path(row.image).suffix else row.image: row.grade
        for row in read_label_rows(path, num_classes)
    }
