"""Power-law fits y = E·x^α (EST §6.4) and their plot."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ttsctr.analysis import PowerLawFit, fit_power_law, plot_power_law
from ttsctr.errors import ConfigError


def test_exact_power_law_is_recovered_at_flops_scale() -> None:
    x = np.array([2e5, 5e5, 1e6, 3e6, 1e7])  # FLOPs-like magnitudes
    y = 3e-3 * x**0.35
    fit = fit_power_law(x, y)
    assert fit.E == pytest.approx(3e-3, rel=1e-6)
    assert fit.alpha == pytest.approx(0.35, rel=1e-6)
    assert fit.r2_log == pytest.approx(1.0, abs=1e-9)
    assert fit.n == 5
    assert fit.E_se < 1e-6 * fit.E and fit.alpha_se < 1e-6
    np.testing.assert_allclose(fit.predict(x), y, rtol=1e-6)
    assert fit.predict(4.0).shape == ()


def test_negative_exponent_and_tiny_scale() -> None:
    x = np.array([1.0, 2.0, 4.0, 8.0])
    fit = fit_power_law(x, 0.05 * x**-0.7)
    assert (fit.E, fit.alpha) == (pytest.approx(0.05, rel=1e-6), pytest.approx(-0.7, rel=1e-6))


def test_noisy_fit_within_a_few_standard_errors() -> None:
    rng = np.random.default_rng(0)
    x = np.geomspace(1e4, 1e8, 12)
    true_e, true_alpha = 0.02, 0.25
    y = true_e * x**true_alpha + rng.normal(scale=0.05, size=x.size)
    fit = fit_power_law(x, y)
    assert abs(fit.alpha - true_alpha) < 3 * fit.alpha_se
    assert abs(fit.E - true_e) < 3 * fit.E_se
    assert 0 < fit.alpha_se < 0.05
    assert 0.9 < fit.r2_log <= 1.0


def test_covariance_matches_the_gauss_newton_formula_by_hand() -> None:
    # cov = s²·(JᵀJ)⁻¹ at the optimum, J = [x^α, E·x^α·ln x], s² = RSS/(n − 2)
    x = np.array([1.0, 2.0, 3.0, 5.0, 8.0])
    y = np.array([1.1, 1.9, 3.2, 4.8, 8.3])
    fit = fit_power_law(x, y)
    pred = fit.predict(x)
    jac = np.stack([x**fit.alpha, pred * np.log(x)], axis=1)
    s2 = np.sum((y - pred) ** 2) / (x.size - 2)
    cov = s2 * np.linalg.inv(jac.T @ jac)
    np.testing.assert_allclose(np.array(fit.cov), cov, rtol=1e-4)
    assert fit.E_se == pytest.approx(np.sqrt(cov[0, 0]), rel=1e-4)
    assert fit.alpha_se == pytest.approx(np.sqrt(cov[1, 1]), rel=1e-4)
    # at the optimum the residuals are orthogonal to the Jacobian (normal equations)
    np.testing.assert_allclose(jac.T @ (y - pred), 0.0, atol=1e-6)


def test_alpha_se_has_the_order_of_the_log_log_fit() -> None:
    # small multiplicative noise: the log-log OLS slope's standard error is the linearised one
    rng = np.random.default_rng(1)
    x = np.geomspace(1.0, 1e3, 10)
    y = 2.0 * x**0.5 * np.exp(rng.normal(scale=0.02, size=x.size))
    lx, ly = np.log(x), np.log(y)
    slope, intercept = np.polyfit(lx, ly, 1)
    resid = ly - (slope * lx + intercept)
    ols_se = np.sqrt(np.sum(resid**2) / (x.size - 2) / np.sum((lx - lx.mean()) ** 2))
    fit = fit_power_law(x, y)
    assert fit.alpha == pytest.approx(slope, abs=3 * ols_se)
    assert ols_se / 5 < fit.alpha_se < 5 * ols_se


def test_sigma_weights_and_absolute_sigma() -> None:
    x = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    y = 1.5 * x**0.4 + np.array([0.01, -0.02, 0.015, -0.01, 0.02])
    sigma = np.full(x.size, 0.1)
    rel = fit_power_law(x, y, sigma)
    unweighted = fit_power_law(x, y)
    assert rel.alpha == pytest.approx(unweighted.alpha, rel=1e-6)  # equal weights: same fit
    assert rel.alpha_se == pytest.approx(unweighted.alpha_se, rel=1e-4)
    absolute = fit_power_law(x, y, sigma, absolute_sigma=True)
    assert absolute.alpha_se > rel.alpha_se  # σ = 0.1 is larger than the scatter


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        ([1.0, 0.0, 3.0], [1.0, 2.0, 3.0], r"point 1 \(x=0, y=2\).*x must be > 0"),
        ([1.0, 2.0, -3.0], [1.0, 2.0, 3.0], r"point 2 \(x=-3, y=3\).*x must be > 0"),
        ([1.0, 2.0, 3.0], [1.0, -0.5, 3.0], r"point 1 \(x=2, y=-0.5\).*y must be > 0"),
        ([1.0, 2.0, 3.0], [0.0, 1.0, 3.0], r"point 0 \(x=1, y=0\).*y must be > 0"),
        ([1.0, 2.0, 3.0], [1.0, np.nan, 3.0], r"point 1 .*not finite"),
        ([1.0, 2.0], [1.0, 2.0], r"at least 3 points"),
        ([1.0, 2.0, 3.0], [1.0, 2.0], r"same length, got 3 and 2"),
        ([2.0, 2.0, 2.0], [1.0, 2.0, 3.0], r"2 distinct x"),
    ],
)
def test_bad_input_is_refused_naming_the_point(x, y, match) -> None:
    with pytest.raises(ConfigError, match=match):
        fit_power_law(x, y)


def test_bad_sigma_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"point 2 .*sigma must be finite and > 0"):
        fit_power_law([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], sigma=[0.1, 0.1, 0.0])
    with pytest.raises(ConfigError, match="one value per point"):
        fit_power_law([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], sigma=[0.1, 0.1])


def test_fit_is_frozen_and_serialisable() -> None:
    fit = fit_power_law([1.0, 2.0, 4.0], [1.0, 1.5, 2.1])
    assert isinstance(fit, PowerLawFit)
    with pytest.raises(AttributeError):
        fit.alpha = 1.0  # type: ignore[misc]
    d = fit.to_dict()
    assert set(d) == {"E", "alpha", "E_se", "alpha_se", "cov", "r2_log", "n"}
    assert json.loads(json.dumps(d))["n"] == 3
    assert "·C^" in fit.formula("C")


def test_plot_has_the_requested_size() -> None:
    x = np.array([1e5, 2e5, 4e5, 8e5])
    a = fit_power_law(x, 0.01 * x**0.3)
    image = plot_power_law(
        {"depth": (x, 0.01 * x**0.3, a), "width": ([1e5, 3e5], [0.5, -0.1], None)},
        "FLOPs per row (C)", "ΔGAUC (%)", symbol="C", size=(480, 320),
    )
    assert image.size == (480, 320)
    assert image.mode == "RGB"
    assert np.asarray(image).std() > 0  # something was drawn
    empty = plot_power_law({"width": ([1e5, 2e5], [-0.2, 0.0], None)}, "C", "ΔGAUC", size=(300, 200))
    assert empty.size == (300, 200)  # nothing positive: an explanatory panel, not a log-scale error
    with pytest.raises(ConfigError, match="no series"):
        plot_power_law({}, "x", "y")
