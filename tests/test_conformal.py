"""Split-conformal calibration of the forecast intervals (models/forecaster.py conformal_widths, widen)."""

from __future__ import annotations

import numpy as np
import pytest

from neuralsight.data.series import Scaler, Transform
from neuralsight.models.forecaster import conformal_widths, widen

IDENTITY = Transform(log1p=False, scaler=Scaler(0.0, 1.0))


def test_widths_by_hand():
    # 4 origins, 2 horizons; interval [0, 1] everywhere; scores max(lower - y, y - upper)
    y = np.array([[0.5, 3.0], [2.0, -1.0], [1.5, 0.5], [-0.5, 1.25]])
    f = {"net": {"point": np.full((4, 2), 0.5), "lower": np.zeros((4, 2)), "upper": np.ones((4, 2))},
         "naive": {"point": np.zeros((4, 2)), "lower": None, "upper": None}}
    widths = conformal_widths(f, y, IDENTITY, nominal=0.5)
    # scores h1: -0.5, 1.0, 0.5, 0.5 -> sorted -0.5, 0.5, 0.5, 1.0; level ceil(5 * 0.5) / 4 = 0.75 -> "higher": 0.5
    # scores h2: 2.0, 1.0, -0.5, 0.25 -> sorted -0.5, 0.25, 1.0, 2.0; 0.75 -> 1.0
    assert set(widths) == {"net"}
    np.testing.assert_allclose(widths["net"], [0.5, 1.0])
    wide = widen(f, widths, IDENTITY)
    np.testing.assert_allclose(wide["net"]["lower"][:, 0], -0.5)
    np.testing.assert_allclose(wide["net"]["upper"][:, 1], 2.0)
    assert wide["naive"] is f["naive"]


def test_a_too_narrow_interval_reaches_its_level_on_new_data():
    """Exchangeable errors: intervals half as wide as they should be cover about 0.5; widened on one draw they
    cover about 0.8 on another."""
    rng = np.random.default_rng(0)
    half = 1.2816 / 2                          # the 0.1..0.9 band of N(0, 1) is +-1.2816; this one is half that
    band = {"point": np.zeros((4000, 3)), "lower": np.full((4000, 3), -half), "upper": np.full((4000, 3), half)}
    calib, fresh = rng.normal(size=(4000, 3)), rng.normal(size=(4000, 3))
    before = ((fresh >= band["lower"]) & (fresh <= band["upper"])).mean()
    widths = conformal_widths({"net": band}, calib, IDENTITY, nominal=0.8)
    wide = widen({"net": band}, widths, IDENTITY)["net"]
    after = ((fresh >= wide["lower"]) & (fresh <= wide["upper"])).mean()
    assert before == pytest.approx(0.48, abs=0.03) and after == pytest.approx(0.80, abs=0.02)
    np.testing.assert_allclose(widths["net"], 1.2816 - half, atol=0.06)


def test_in_log_space_a_width_is_a_ratio():
    t = Transform(log1p=True, scaler=Scaler(0.0, 1.0))
    f = {"net": {"point": np.array([[100.0], [1000.0]]), "lower": np.array([[90.0], [900.0]]),
                 "upper": np.array([[110.0], [1100.0]])}}
    wide = widen(f, {"net": np.array([np.log(2.0)])}, t)["net"]
    np.testing.assert_allclose((wide["upper"] + 1) / (f["net"]["upper"] + 1), 2.0)   # the same ratio at both scales
    np.testing.assert_allclose((f["net"]["lower"] + 1) / (wide["lower"] + 1), 2.0)


def test_a_negative_width_never_crosses_the_point_forecast():
    f = {"net": {"point": np.array([[1.0]]), "lower": np.array([[0.0]]), "upper": np.array([[2.0]])}}
    wide = widen(f, {"net": np.array([-5.0])}, IDENTITY)["net"]
    assert wide["lower"][0, 0] == wide["upper"][0, 0] == 1.0
