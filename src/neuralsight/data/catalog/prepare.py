"""Files derived after a download: a dataset's ``prepare`` names one function here, run on the staging folder."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

from neuralsight.errors import DataError
from neuralsight.io import atomic_write_text

COVID_RAW = "raw/time_series_covid19_confirmed_global.csv"
COVID_HU = "hungary_daily_cases.csv"


def derive_hungary(raw_csv: Path, out_csv: Path) -> Path:
    """Write ``date,new_cases,cumulative`` for Hungary from a JHU-style confirmed-cases table.

    Accepts the JHU header (``Province/State,Country/Region,Lat,Long``, dates ``m/d/yy``) and the re-headed
    copy (``Province,Country,Lat,Lon``, dates ``m/d/YYYY``). ``new_cases`` is the day-on-day difference of the
    cumulative count (the first day: the cumulative value itself).
    """
    with open(raw_csv, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        row = next((r for r in reader if len(r) > 1 and r[1] == "Hungary" and not r[0]), None)
    if row is None:
        raise DataError(f"{raw_csv} has no Hungary row", "expected a JHU CSSE time_series_covid19_confirmed_global.csv")
    if len(row) != len(header):
        raise DataError(f"{raw_csv}: the Hungary row has {len(row)} fields, the header {len(header)}",
                        "the file is damaged; fetch it again")
    out = io.StringIO()
    out.write("date,new_cases,cumulative\n")
    previous = 0
    for label, value in zip(header[4:], row[4:], strict=True):
        month, day, year = (int(x) for x in label.split("/"))
        year += 2000 if year < 100 else 0
        cumulative = int(float(value))
        out.write(f"{year:04d}-{month:02d}-{day:02d},{cumulative - previous},{cumulative}\n")
        previous = cumulative
    atomic_write_text(out_csv, out.getvalue())
    return out_csv


def prepare_covid_hu(folder: Path) -> None:
    """The Hungary series next to the downloaded global table."""
    derive_hungary(folder / COVID_RAW, folder / COVID_HU)


PREPARE: dict[str, Callable[[Path], None]] = {"covid-hu": prepare_covid_hu}
