"""Precomputed features from a file (``--features FILE``): embeddings made elsewhere, no backbone.

Formats (chosen by the file's suffix):

* ``.npz``: arrays ``features`` (N x F, numeric), ``labels`` (N; integers or strings),
  optional ``names`` (N strings, unique) and ``split`` (N of ``train``/``val``/``test``);
* ``.npy``: a 2-D numeric array (features only: ``predict``), or a structured array with
  fields of the same names as ``.npz``'s arrays;
* ``.csv`` (a header row) and ``.parquet`` (``pip install 'qtransfer[parquet]'``): a label
  column, optional name and split columns, and every other column a numeric feature
  (a parquet column of equal-length lists counts as that many feature columns).
  The column names are options (``label_column``, ``name_column``, ``split_column``).

Every problem is a :class:`~qtransfer.errors.DataError` (exit 3) of one line naming the
file and what is wrong: NaN or infinite values, ragged rows, labels missing or of one class
only, repeated names, an unknown split. Only ``numpy`` is imported (``pyarrow`` for parquet).

Example:
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "emb.csv"
    >>> _ = path.write_text("label,f0,f1\\nant,0.1,0.2\\nbee,0.9,0.8\\nant,0.2,0.1\\n")
    >>> table = load_feature_file(path)
    >>> table.features.shape, table.classes, table.labels.tolist()
    ((3, 2), ('ant', 'bee'), [0, 1, 0])
"""

from __future__ import annotations

import csv
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qtransfer.errors import DataError
from qtransfer.paths import sha256_file

__all__ = ["FEATURE_FILE_SUFFIXES", "FeatureTable", "load_feature_file"]

FEATURE_FILE_SUFFIXES = (".npz", ".npy", ".csv", ".parquet")
_SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class FeatureTable:
    """The rows of a feature file: ``features`` (N x F float32), ``labels`` (N indices into
    ``classes``, or ``None`` when the file has none), ``names`` (N unique strings) and
    ``split`` (N split names, or ``None``: every row is ``train``)."""

    path: Path
    features: np.ndarray
    labels: np.ndarray | None
    classes: tuple[str, ...]
    names: tuple[str, ...]
    split: tuple[str, ...] | None
    sha256: str

    @property
    def num_features(self) -> int:
        return int(self.features.shape[1])


def load_feature_file(path: str | Path, *, label_column: str = "label", name_column: str = "name",
                      split_column: str = "split", require_labels: bool = True) -> FeatureTable:
    """Read and check a feature file (see the module); ``require_labels=False`` accepts one without labels.

    With labels, at least two classes are required (a classifier of one class learns nothing).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"features file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix not in FEATURE_FILE_SUFFIXES:
        raise DataError(f"features file {path}: use {', '.join(FEATURE_FILE_SUFFIXES)}, not {suffix or 'no suffix'!r}")
    if suffix in (".npz", ".npy"):
        columns = _read_numpy(path)
        keys = {"features": "features", "labels": "labels", "names": "names", "split": "split"}
    else:
        named = (label_column, name_column, split_column)
        text, to_float = (_read_csv(path), _float_column) if suffix == ".csv" else (_read_parquet(path, named),
                                                                                     _parquet_float)
        if require_labels and label_column not in text:
            raise DataError(f"features file {path} has no labels (no column {label_column!r}; its columns: "
                            f"{', '.join(list(text)[:8])}{' ...' if len(text) > 8 else ''}); name it with --label-column")
        columns = _columns(path, text, named, to_float)
        keys = {"features": "features", "labels": label_column, "names": name_column, "split": split_column}
    return _check(path, columns, keys, require_labels)


def _read_numpy(path: Path) -> dict[str, np.ndarray]:
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        array = np.load(path, allow_pickle=False)
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise DataError(f"features file {path} holds Python objects (ragged rows?): every row must have the same "
                            f"number of numeric features") from None
        raise DataError(f"features file {path} cannot be read: {e}") from None
    except (OSError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"features file {path} cannot be read: {e}") from None
    if array.dtype.names:
        return {name: array[name] for name in array.dtype.names}
    return {"features": array}


def _read_csv(path: Path) -> dict[str, np.ndarray]:
    """Column name -> the column's text (a header row, then rows of as many fields)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"features file {path} cannot be read: {e}") from None
    rows = [r for r in rows if r]
    if len(rows) < 2:
        raise DataError(f"features file {path} has no rows under its header")
    header = [h.strip() for h in rows[0]]
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise DataError(f"features file {path}: ragged rows: line {line} has {len(row)} fields, the header "
                            f"{len(header)}")
    body = np.array(rows[1:], dtype=object)
    return {name: body[:, j] for j, name in enumerate(header)}


def _float_column(path: Path, name: str, values: np.ndarray) -> np.ndarray:
    try:
        return np.array([float(v) for v in values], dtype=np.float64)
    except ValueError:
        bad = next(v for v in values if not _is_float(v))
        raise DataError(f"features file {path}: column {name!r} is not numeric ({bad!r}); name it with "
                        f"--label-column, --name-column or --split-column, or drop it") from None


def _is_float(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _read_parquet(path: Path, named: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Column name -> its values (a column of equal-length lists: a 2-D float array)."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError("reading .parquet features needs pyarrow: pip install 'qtransfer[parquet]'") from None
    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow's own error types
        raise DataError(f"features file {path} cannot be read as parquet: {e}") from None
    text: dict[str, np.ndarray] = {}
    for name in table.column_names:
        column = table.column(name)
        if name in named:
            text[name] = np.array(column.to_pylist(), dtype=object)
        elif str(column.type).startswith(("list", "large_list", "fixed_size_list")):
            values = column.to_pylist()
            widths = {len(v) if v is not None else -1 for v in values}
            if len(widths) != 1 or -1 in widths:
                raise DataError(f"features file {path}: ragged rows: the lists of column {name!r} have lengths "
                                f"{sorted(widths)}; every row needs the same number of features")
            text[name] = np.array(values, dtype=np.float64)
        else:
            text[name] = np.array(column.to_pylist(), dtype=object)
    return text


def _parquet_float(path: Path, name: str, values: np.ndarray) -> np.ndarray:
    if values.dtype != object:
        return values
    if any(v is None for v in values):
        raise DataError(f"features file {path}: column {name!r} has missing values (nulls); every feature needs a number")
    if not all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in values):
        bad = next(v for v in values if not isinstance(v, (int, float, np.integer, np.floating)))
        raise DataError(f"features file {path}: column {name!r} is not numeric ({bad!r}); name it with "
                        f"--label-column, --name-column or --split-column, or drop it")
    return values.astype(np.float64)


def _columns(path: Path, text: dict[str, np.ndarray], named: tuple[str, str, str], to_float) -> dict[str, np.ndarray]:
    """The named columns as they are, every other one a float column, stacked into ``features``."""
    out = {name: text[name] for name in named if name in text}
    parts = [to_float(path, name, values) for name, values in text.items() if name not in named]
    if not parts:
        raise DataError(f"features file {path} has no feature columns (columns: {', '.join(text)})")
    out["features"] = np.column_stack([p.reshape(len(p), -1) for p in parts])
    return out


def _check(path: Path, columns: dict[str, np.ndarray], keys: dict[str, str], require_labels: bool) -> FeatureTable:
    features = np.asarray(columns.get("features"))
    if "features" not in columns:
        raise DataError(f"features file {path} has no array 'features' (it has: {', '.join(columns) or 'nothing'})")
    if features.ndim == 1 and features.dtype == object:
        raise DataError(f"features file {path}: ragged rows; every row must have the same number of features")
    if features.ndim != 2 or features.shape[0] == 0 or features.shape[1] == 0:
        raise DataError(f"features file {path}: 'features' must be a non-empty 2-D array (rows x features), "
                        f"got shape {features.shape}")
    if not (np.issubdtype(features.dtype, np.number) and not np.issubdtype(features.dtype, np.complexfloating)):
        raise DataError(f"features file {path}: 'features' must be numeric, got {features.dtype}")
    bad = ~np.isfinite(features)
    if bad.any():
        row, col = (int(v) for v in np.argwhere(bad)[0])
        raise DataError(f"features file {path}: {int(bad.sum())} value(s) are NaN or infinite (first at row {row}, "
                        f"feature {col}); remove or impute them")
    n = features.shape[0]
    labels, classes = _labels(path, columns.get(keys["labels"]), keys["labels"], n, require_labels)
    names = _names(path, columns.get(keys["names"]), n)
    split = _split(path, columns.get(keys["split"]), keys["split"], n)
    return FeatureTable(path, np.ascontiguousarray(features, dtype=np.float32), labels, classes, names, split,
                        sha256_file(path))


def _labels(path: Path, values, key: str, n: int, required: bool):
    if values is None:
        if required:
            raise DataError(f"features file {path} has no labels (expected {'an array' if key == 'labels' else 'a column'} "
                            f"{key!r}{'' if key == 'labels' else '; name it with --label-column'})")
        return None, ()
    values = np.asarray(values)
    if values.shape != (n,):
        raise DataError(f"features file {path}: {key!r} has shape {values.shape}; expected one label per row ({n})")
    if values.dtype == object or values.dtype.kind in "US":
        text = [None if v is None else str(v).strip() for v in values]
        missing = [i for i, v in enumerate(text) if not v]
        if missing:
            raise DataError(f"features file {path}: {len(missing)} row(s) have no label (first: row {missing[0]})")
        if all(_is_int(v) for v in text):
            values = np.array([int(v) for v in text])
        else:
            classes = tuple(sorted(set(text)))
            return _one_class(path, np.array([classes.index(v) for v in text], dtype=np.int64), classes)
    if values.dtype.kind == "f":
        if not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
            raise DataError(f"features file {path}: labels must be integers or class names, got {values.dtype} values "
                            f"such as {values[~(values == np.round(values))][:1].tolist() or 'NaN'}")
        values = values.astype(np.int64)
    if values.dtype.kind not in "iu":
        raise DataError(f"features file {path}: labels must be integers or class names, got {values.dtype}")
    unique = sorted(set(int(v) for v in values))
    classes = tuple(str(v) for v in unique)
    index = {v: k for k, v in enumerate(unique)}
    return _one_class(path, np.array([index[int(v)] for v in values], dtype=np.int64), classes)


def _one_class(path: Path, labels: np.ndarray, classes: tuple[str, ...]):
    if len(classes) < 2:
        raise DataError(f"features file {path}: every row has the label {classes[0]!r}; a classifier needs at "
                        f"least two classes")
    return labels, classes


def _is_int(text: str) -> bool:
    try:
        int(text)
        return True
    except ValueError:
        return False


def _names(path: Path, values, n: int) -> tuple[str, ...]:
    if values is None:
        return tuple(f"{path.name}#{i}" for i in range(n))
    names = tuple(str(v) for v in np.asarray(values).reshape(-1))
    if len(names) != n:
        raise DataError(f"features file {path}: {len(names)} names for {n} rows")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataError(f"features file {path}: the name {name!r} is given to more than one row; names must be unique")
        seen.add(name)
    return names


def _split(path: Path, values, key: str, n: int) -> tuple[str, ...] | None:
    if values is None:
        return None
    split = tuple(str(v).strip().lower() for v in np.asarray(values).reshape(-1))
    if len(split) != n:
        raise DataError(f"features file {path}: {len(split)} {key!r} values for {n} rows")
    unknown = sorted(set(split) - set(_SPLITS))
    if unknown:
        raise DataError(f"features file {path}: {key!r} holds {unknown[0]!r}; use train, val or test")
    if "train" not in split:
        raise DataError(f"features file {path}: no row has the split 'train'")
    return split

