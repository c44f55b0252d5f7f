"""data/series.py: CSV parsing, explicit gap filling, causal transforms, leak-free windows and scaling."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import torch

from neuralsight.data.series import (
    Scaler,
    Transform,
    check_length,
    read_csv,
    regularize,
    rolling_mean,
    weekly_sum,
    windows,
)
from neuralsight.errors import DataError


def write(tmp_path, text, name="s.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def daily_csv(tmp_path, values, start="2021-01-01", name="s.csv"):
    d0 = dt.date.fromisoformat(start)
    lines = ["date,value,other"] + [f"{d0 + dt.timedelta(days=i)},{v},1" for i, v in enumerate(values)]
    return write(tmp_path, "\n".join(lines) + "\n", name)


def test_reads_named_column_and_default_first_value_column(tmp_path):
    path = daily_csv(tmp_path, [1, 2, 3])
    s = read_csv(path, "date", "value")
    assert s.values.tolist() == [1.0, 2.0, 3.0] and s.step_days == 1 and s.filled == []
    assert read_csv(path, "date", "other").values.tolist() == [1.0, 1.0, 1.0]
    assert read_csv(path, "date", None).name == "value"


def test_missing_dates_are_filled_explicitly_and_reported(tmp_path):
    path = write(tmp_path, "date,value\n2021-01-01,1\n2021-01-02,2\n2021-01-05,5\n2021-01-06,6\n")
    s = read_csv(path, "date", "value")
    assert [str(d) for d in s.dates] == [f"2021-01-0{i}" for i in range(1, 7)]   # nothing shifted
    assert s.values.tolist() == [1, 2, 3, 4, 5, 6]                                   # linear fill
    assert [str(d) for d in s.filled] == ["2021-01-03", "2021-01-04"]
    assert "2 missing dates filled (interpolate): 2021-01-03..2021-01-04" in s.fill_report()
    assert read_csv(path, "date", "value", fill="zero").values.tolist() == [1, 2, 0, 0, 5, 6]
    assert read_csv(path, "date", "value", fill="previous").values.tolist() == [1, 2, 2, 2, 5, 6]
    with pytest.raises(DataError, match=r"s.csv: 2 missing dates or values, first 2021-01-03"):
        read_csv(path, "date", "value", fill="error")


def test_empty_cell_counts_as_missing(tmp_path):
    path = write(tmp_path, "date,value\n2021-01-01,1\n2021-01-02,\n2021-01-03,3\n")
    s = read_csv(path, "date", "value")
    assert s.values.tolist() == [1, 2, 3] and len(s.filled) == 1


def test_weekly_grid_is_detected(tmp_path):
    path = write(tmp_path, "date,value\n2021-01-03,1\n2021-01-10,2\n2021-01-24,4\n")
    s = read_csv(path, "date", "value")
    assert s.step_days == 7 and s.values.tolist() == [1, 2, 3, 4] and str(s.filled[0]) == "2021-01-17"


@pytest.mark.parametrize("text, message", [
    ("date,value\n2021-01-01,1\n2021-01-02,abc\n", r"bad.csv line 3: non-numeric value 'abc' in column 'value'"),
    ("date,value\n2021-01-01,1\n2021-13-45,2\n", r"bad.csv line 3: unparsable date '2021-13-45' in column 'date'"),
    ("date,value\n2021-01-02,1\n2021-01-01,2\n", r"bad.csv line 3: unsorted date 2021-01-01 \(after 2021-01-02\)"),
    ("date,value\n2021-01-01,1\n2021-01-01,2\n", r"bad.csv line 3: duplicate date 2021-01-01"),
    ("day,value\n2021-01-01,1\n", r"bad.csv has no date column 'date'; columns are: day, value"),
    ("date,cases\n2021-01-01,1\n", r"bad.csv has no value column 'value'; columns are: date, cases"),
    ("date,value\n", r"bad.csv has a header but no data rows"),
    ("", r"bad.csv is empty"),
    ("date,value\n2021-01-01,1\n2021-01-02\n", r"bad.csv line 3 has 1 fields; expected 2"),
    ("date,value\n2021-01-01,1\n2021-01-02,inf\n", r"bad.csv line 3: infinite value"),
    ("date,value\n2021-01-01,1\n2021-01-03,1\n2021-01-05,1\n2021-01-06,1\n",
     r"bad.csv: date 2021-01-06 is not on the 2-day grid"),
])
def test_bad_csv_messages_name_file_and_problem(tmp_path, text, message):
    path = write(tmp_path, text, "bad.csv")
    with pytest.raises(DataError, match=message):
        read_csv(path, "date", "value")


def test_missing_file_and_short_series(tmp_path):
    with pytest.raises(DataError, match=r"CSV file .*nope.csv does not exist"):
        read_csv(tmp_path / "nope.csv")
    s = read_csv(daily_csv(tmp_path, range(10)), "date", "value")
    with pytest.raises(DataError, match=r"s.csv: the series has 10 steps, shorter than one input window of 8 "
                                        r"plus a horizon of 3"):
        check_length(s, 8, 3)
    check_length(s, 7, 3)


def test_rolling_mean_is_trailing_and_matches_reference():
    rng = np.random.default_rng(0)
    x = rng.normal(size=40)
    ref = np.array([x[max(0, t - 6): t + 1].mean() for t in range(40)])
    np.testing.assert_allclose(rolling_mean(x, 7), ref, atol=1e-12)
    y = x.copy()
    y[30:] += 1000.0                              # a change in the future does not move the past
    np.testing.assert_allclose(rolling_mean(y, 7)[:30], rolling_mean(x, 7)[:30])


def test_weekly_sum_blocks_end_on_last_day():
    d0 = dt.date(2021, 1, 1)
    s = regularize([d0 + dt.timedelta(days=i) for i in range(16)], np.arange(16.0))
    w = weekly_sum(s)
    assert w.values.tolist() == [sum(range(2, 9)), sum(range(9, 16))] and w.step_days == 7
    assert w.dates[-1] == s.dates[-1]


def test_transform_round_trip_and_training_part_only():
    x = np.array([0.0, 5.0, 10.0, 1000.0])
    t = Transform.fit(x[:3], log1p=True)
    logs = np.log1p(x[:3])
    assert t.scaler.mean == pytest.approx(logs.mean()) and t.scaler.std == pytest.approx(logs.std())
    np.testing.assert_allclose(t.inverse(t.forward(x)), x, rtol=1e-9)
    tz = torch.tensor(x)
    torch.testing.assert_close(t.inverse(t.forward(tz)), tz)
    assert Scaler.fit(np.ones(5)).std == 1.0     # constant data does not divide by zero


def test_windows_index_convention_and_bounds():
    z = torch.arange(20.0)
    x, y, o = windows(z, 4, 3, 0, 12)
    assert x.shape == (len(o), 4) and y.shape == (len(o), 3)
    assert o[0] == 3 and o[-1] == 8                # last target index 11 < 12
    assert x[0].tolist() == [0, 1, 2, 3] and y[0].tolist() == [4, 5, 6]
    assert int(y.max()) == 11
    xv, yv, ov = windows(z, 4, 3, 12, 20)
    assert int(yv.min()) == 12 and int(yv.max()) == 19 and ov[0] == 11
