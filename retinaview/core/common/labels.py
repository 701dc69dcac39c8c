"""Grade labels from a CSV: EyePACS (``image,level``) or APTOS (``id_code,diagnosis``).

One parser for the training data sets and the desktop app's browser. Every problem is a `DataError` that names
the file and the line: empty file, unknown columns, a row with the wrong number of fields, a label that is not
a grade, a name listed twice. numpy-free and torch-free.
"""

from __future__ import annotations

import csv
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from retinaview.core.common.errors import DataError, os_error_message

HEADERS = {("image", "level"): "EyePACS", ("id_code", "diagnosis"): "APTOS"}
MAX_BYTES = 50 * 1024 * 1024
# Label files looked for in an image folder, in this order: ours, then EyePACS's and APTOS's own names.
LABEL_FILES = ("labels.csv", "trainLabels.csv", "train.csv")


@dataclass(frozen=True)
class LabelRow:
    line: int  # 1-based line of the CSV
    image: str  # as written: a file name or a name without extension
    grade: int


def find_labels_csv(folder: str | os.PathLike) -> Path | None:
    """The labels CSV of an image folder: the first of `LABEL_FILES` present, else its only CSV file, else
    None. Several CSV files and none of the known names: a `DataError` listing them."""
    folder = Path(folder)
    for name in LABEL_FILES:
        if (folder / name).is_file():
            return folder / name
    csvs = sorted(p for p in folder.glob("*.csv") if p.is_file())
    if len(csvs) == 1:
        return csvs[0]
    if not csvs:
        return None
    names = ", ".join(p.name for p in csvs)
    raise DataError(
        f"{folder}: several CSV files ({names}) and none named {' or '.join(LABEL_FILES)}"
    )


def read_label_rows(csv_path: str | os.PathLike, num_classes: int = 5) -> list[LabelRow]:
    """The rows of a labels CSV, checked; see the module docstring for what is refused."""
    path = Path(csv_path)
    name = str(path)  # with its folder: "labels.csv" alone does not say which data set
    try:
        st = path.stat()
        if stat.S_ISDIR(st.st_mode):
            raise DataError(f"{path}: not a regular file (a folder), expected a labels CSV")
        if not stat.S_ISREG(st.st_mode):
            # Reading a named pipe or a device would block or never end.
            raise DataError(f"{path}: not a regular file, expected a labels CSV")
        if st.st_size > MAX_BYTES:
            raise DataError(f"{path}: label file larger than {MAX_BYTES // 2**20} MB")
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text CSV file") from None
    except OSError as exc:
        raise DataError(os_error_message(path, "read", exc)) from None
    try:
        rows = list(csv.reader(text.splitlines()))
    except csv.Error as exc:
        raise DataError(f"{path}: not a CSV file ({exc})") from None
    numbered = [(i + 1, r) for i, r in enumerate(rows) if any(c.strip() for c in r)]
    if not numbered:
        raise DataError(f"{name}: empty file (expected a header image,level or id_code,diagnosis)")
    header_line, header = numbered[0]
    cols = tuple(c.strip().lower() for c in header)
    if cols not in HEADERS:
        raise DataError(
            f"{name} line {header_line}: expected columns image,level (EyePACS) or id_code,diagnosis "
            f"(APTOS), found {','.join(cols) or 'none'}"
        )
    if len(numbered) == 1:
        raise DataError(f"{name}: no rows after the header")
    out: list[LabelRow] = []
    seen: dict[str, int] = {}
    for line, row in numbered[1:]:
        if len(row) != 2:
            raise DataError(f"{name} line {line}: expected 2 fields, found {len(row)}")
        image, label = row[0].strip(), row[1].strip()
        if not image:
            raise DataError(f"{name} line {line}: empty image name")
        try:
            grade = int(label)
        except ValueError:
            grade = -1
        if not 0 <= grade < num_classes or label != str(grade):
            raise DataError(
                f"{name} line {line}: label {label!r} is not a grade 0-{num_classes - 1}"
            )
        if image in seen:
            raise DataError(
                f"{name} line {line}: image {image!r} is listed twice (first on line {seen[image]})"
            )
        seen[image] = line
        out.append(LabelRow(line, image, grade))
    return out
