"""Feeder tables: validation of the bus and line tables and the CSV reader of bundled feeders.

Every problem raises `FeederDataError` naming the file, the line number in that file and the
field, before a `Feeder` (gridledger/network/feeder.py) is built.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "BUS_COLUMNS",
    "LINE_COLUMNS",
    "FeederDataError",
    "check_ohms",
    "check_tables",
    "read_csv",
    "read_meta",
]

BUS_COLUMNS = ("p_kw", "q_kvar", "shunt_kvar", "pv_kw", "shunt_kw")
OPTIONAL_BUS_COLUMNS = ("shunt_kw",)  # absent in a file = 0
LINE_COLUMNS = ("from_bus", "to_bus", "r_pu", "x_pu")
# r_pu given next to r_ohm must agree with r_ohm / Zbase to this relative tolerance
# (the bundled tables carry 10 significant digits).
_PU_REL_TOL = 1e-6
_PU_ABS_TOL = 1e-9


class FeederDataError(ValueError):
    """A feeder table is malformed; the message names the file, the row and the field."""

    def __init__(
        self, message: str, *, file: str, row: int | None = None, field: str | None = None
    ) -> None:
        self.file = file
        self.row = row
        self.field = field
        where = file
        if row is not None:
            where += f", row {row}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {message}")


def _num(df: pd.DataFrame, col: str, file: str, rows: np.ndarray) -> np.ndarray:
    values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        k = int(bad[0])
        raise FeederDataError(
            f"not a finite number: {df[col].iloc[k]!r}", file=file, row=int(rows[k]), field=col
        )
    return values


def check_tables(
    buses: pd.DataFrame, lines: pd.DataFrame, *, bus_file: str, line_file: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Normalised copies of the tables; raises FeederDataError on the first problem."""
    brows = np.asarray(buses.attrs.get("rows", np.arange(1, len(buses) + 1)))
    lrows = np.asarray(lines.attrs.get("rows", np.arange(1, len(lines) + 1)))
    if len(buses) == 0:
        raise FeederDataError("no buses", file=bus_file)
    for col in BUS_COLUMNS:
        if col not in buses.columns and col not in OPTIONAL_BUS_COLUMNS:
            raise FeederDataError("missing column", file=bus_file, field=col)
    for col in LINE_COLUMNS:
        if col not in lines.columns:
            raise FeederDataError("missing column", file=line_file, field=col)
    idx = pd.to_numeric(pd.Series(buses.index), errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(idx) | (idx != np.round(idx)))
    if len(bad):
        k = int(bad[0])
        raise FeederDataError(
            f"bus number must be an integer, got {buses.index[k]!r}",
            file=bus_file,
            row=int(brows[k]),
            field="bus",
        )
    idx = idx.astype(np.int64)
    seen: dict[int, int] = {}
    for k, b in enumerate(idx):
        if b in seen:
            raise FeederDataError(
                f"duplicate bus {b} (first at row {brows[seen[b]]})",
                file=bus_file,
                row=int(brows[k]),
                field="bus",
            )
        seen[int(b)] = k
    out_b = pd.DataFrame(
        {
            col: _num(buses, col, bus_file, brows) if col in buses.columns else 0.0
            for col in BUS_COLUMNS
        },
        index=pd.Index(idx, name="bus"),
    )
    for col in ("shunt_kw", "pv_kw"):  # shunt_kvar < 0 is a reactor
        neg = np.flatnonzero(out_b[col].to_numpy() < 0)
        if len(neg):
            k = int(neg[0])
            raise FeederDataError(
                f"must be >= 0, got {out_b[col].iloc[k]}",
                file=bus_file,
                row=int(brows[k]),
                field=col,
            )
    out_b.attrs["rows"] = brows

    if len(lines) != len(out_b) - 1:
        raise FeederDataError(
            f"a radial feeder with {len(out_b)} buses has {len(out_b) - 1} lines, "
            f"found {len(lines)}",
            file=line_file,
        )
    cols = {}
    for col in LINE_COLUMNS:
        cols[col] = _num(lines, col, line_file, lrows)
    for col in ("from_bus", "to_bus"):
        for k, b in enumerate(cols[col]):
            if b != round(b) or int(b) not in seen:
                raise FeederDataError(
                    f"unknown bus {lines[col].iloc[k]!r} (not in {bus_file})",
                    file=line_file,
                    row=int(lrows[k]),
                    field=col,
                )
    self_loop = np.flatnonzero(cols["from_bus"] == cols["to_bus"])
    if len(self_loop):
        k = int(self_loop[0])
        raise FeederDataError(
            "line starts and ends at the same bus",
            file=line_file,
            row=int(lrows[k]),
            field="to_bus",
        )
    for col in ("r_pu", "x_pu"):
        neg = np.flatnonzero(cols[col] < 0)
        if len(neg):
            k = int(neg[0])
            raise FeederDataError(
                f"impedance must be >= 0, got {cols[col][k]}",
                file=line_file,
                row=int(lrows[k]),
                field=col,
            )
    out_l = pd.DataFrame(
        {
            "from_bus": cols["from_bus"].astype(np.int64),
            "to_bus": cols["to_bus"].astype(np.int64),
            "r_pu": cols["r_pu"],
            "x_pu": cols["x_pu"],
        }
    )
    out_l.attrs["rows"] = lrows
    return out_b, out_l


def read_csv(source: Any, file: str) -> pd.DataFrame:
    """Read a CSV with `#` comment lines; attrs['rows'] holds each record's line number."""
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise FeederDataError("file not found", file=file) from exc
    lines = text.splitlines()
    keep = [
        (n, s) for n, s in enumerate(lines, start=1) if s.strip() and not s.lstrip().startswith("#")
    ]
    if not keep:
        raise FeederDataError("no header row", file=file)
    body = "\n".join(s for _, s in keep)
    try:
        records = list(csv.reader(io.StringIO(body)))
    except csv.Error as exc:
        raise FeederDataError(f"unreadable CSV: {exc}", file=file) from exc
    header = [h.strip() for h in records[0]]
    data = records[1:]
    row_numbers = np.array([n for n, _ in keep[1:]], dtype=np.int64)
    if len(data) != len(row_numbers):  # quoted newlines: fall back to record numbers
        row_numbers = np.arange(2, len(data) + 2)
    for k, rec in enumerate(data):
        if len(rec) != len(header):
            raise FeederDataError(
                f"{len(rec)} fields, header has {len(header)}", file=file, row=int(row_numbers[k])
            )
    df = pd.DataFrame(data, columns=header)
    df.attrs["rows"] = row_numbers
    return df


def read_meta(source: Any, file: str) -> dict[str, Any]:
    df = read_csv(source, file)
    rows = df.attrs["rows"]
    if len(df) != 1:
        raise FeederDataError(f"expected one data row, found {len(df)}", file=file)
    meta: dict[str, Any] = {}
    for col in ("base_kv", "base_mva", "substation_bus"):
        if col not in df.columns:
            raise FeederDataError("missing column", file=file, field=col)
        value = pd.to_numeric(df[col], errors="coerce").iloc[0]
        if not (np.isfinite(value) and value > 0):
            raise FeederDataError(
                f"must be a positive number, got {df[col].iloc[0]!r}",
                file=file,
                row=int(rows[0]),
                field=col,
            )
        meta[col] = float(value)
    meta["substation_bus"] = int(meta["substation_bus"])
    meta["name"] = str(df["name"].iloc[0]) if "name" in df.columns else None
    return meta


def check_ohms(lines_raw: pd.DataFrame, zbase: float, file: str) -> None:
    """r_pu/x_pu must equal r_ohm/x_ohm divided by Zbase when both are given."""
    rows = lines_raw.attrs["rows"]
    for pu, ohm in (("r_pu", "r_ohm"), ("x_pu", "x_ohm")):
        if ohm not in lines_raw.columns or pu not in lines_raw.columns:
            continue
        v_ohm = _num(lines_raw, ohm, file, rows)
        v_pu = _num(lines_raw, pu, file, rows)
        expect = v_ohm / zbase
        bad = np.flatnonzero(np.abs(v_pu - expect) > _PU_REL_TOL * np.abs(expect) + _PU_ABS_TOL)
        if len(bad):
            k = int(bad[0])
            raise FeederDataError(
                f"{pu} = {v_pu[k]} is inconsistent with {ohm} / Zbase = {v_ohm[k]} / "
                f"{zbase:g} = {expect[k]:.10g}",
                file=file,
                row=int(rows[k]),
                field=pu,
            )
