"""Ground-truth grades from a ``labels.csv`` beside the images (EyePACS ``image,level`` or APTOS
``id_code,diagnosis``), keyed by file stem. numpy-free, Qt-free: plain csv."""

from __future__ import annotations

import csv
from pathlib import Path

from retinaview.core.errors import DataError

LABEL_FILE = "labels.csv"
LAYOUTS = (("image", "level"), ("id_code", "diagnosis"))
MAX_BYTES = 50 * 1024 * 1024


def read_labels(folder: str | Path, num_classes: int = 5) -> dict[str, int]:
    """Grades by image stem; {} when the folder has no ``labels.csv``.

    Raises `DataError` (one line naming the file) for a CSV without a known pair of columns, a grade that is
    not an integer in 0..num_classes-1, or an unreadable file.
    """
    path = Path(folder) / LABEL_FILE
    if not path.is_file():
        return {}
    try:
        if path.stat().st_size > MAX_BYTES:
            raise DataError(f"{path}: label file larger than {MAX_BYTES // 2**20} MB")
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            fields = [f.strip().lower() for f in (reader.fieldnames or [])]
            layout = next((pair for pair in LAYOUTS if set(pair) <= set(fields)), None)
            if layout is None:
                raise DataError(
                    f"{path}: expected columns image,level (EyePACS) or id_code,diagnosis (APTOS),"
                    f" found {','.join(fields) or 'none'}"
                )
            name_col, grade_col = layout
            out: dict[str, int] = {}
            for line, row in enumerate(reader, start=2):
                row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
                name, grade = row.get(name_col, ""), row.get(grade_col, "")
                if not name:
                    continue
                try:
                    value = int(float(grade))
                except ValueError:
                    raise DataError(
                        f"{path}: line {line}: grade {grade!r} is not a number"
                    ) from None
                if not 0 <= value < num_classes:
                    raise DataError(
                        f"{path}: line {line}: grade {value} outside 0..{num_classes - 1}"
                    )
                out[Path(name).stem if Path(name).suffix else name] = value
            return out
    except DataError:
        raise
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read label file ({type(exc).__name__})") from None
