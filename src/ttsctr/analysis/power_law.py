"""Power-law fits ``y = E·x^α`` (EST paper §6.4: ΔGAUC against inference FLOPs C or dense parameters P).

:func:`fit_power_law` fits in the **original space** with ``scipy.optimize.curve_fit``
(least squares on ``y − E·x^α``, weighted by ``1/sigma`` when ``sigma`` is given), started from
the ordinary least-squares line through ``(ln x, ln y)``. The standard errors are the square
roots of the diagonal of curve_fit's covariance: with ``absolute_sigma=False`` (the default)
that is ``s²·(JᵀWJ)⁻¹``, ``s²`` the weighted residual sum of squares over ``n − 2``; with
``absolute_sigma=True`` the sigmas are taken as the standard deviations of the points and the
covariance is ``(JᵀWJ)⁻¹``. R² is reported in log space: ``1 − Σ(ln y − ln ŷ)² / Σ(ln y − mean ln y)²``
(the scale of the paper's log-log figures), NaN when all ``y`` are equal.

Conditioning: ``x`` (FLOPs, parameters) is often 1e4..1e10, which makes ``E`` and ``α``
nearly collinear. The fit is therefore done on ``x / x_ref`` with ``x_ref`` the geometric mean
of ``x``, i.e. ``y = A·(x/x_ref)^α``, and transformed back exactly: ``E = A·x_ref^(−α)``, with
the covariance carried through the Jacobian of ``(A, α) ↦ (E, α)``. The result is the same
least-squares minimum as a direct fit of ``E·x^α``.

``E`` depends on the unit of ``x`` (FLOPs per row vs GFLOPs per batch of 60, as the paper uses);
``α`` does not.

:func:`plot_power_law` draws one or several fitted series on log-log axes and returns a PIL
image of exactly the requested pixel size.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image
from scipy.optimize import OptimizeWarning, curve_fit

from ttsctr.baselines.report import plt
from ttsctr.errors import ConfigError

__all__ = ["PowerLawFit", "fit_power_law", "plot_power_law"]


@dataclass(frozen=True)
class PowerLawFit:
    """``y = E·x^α`` fitted to ``n`` points.

    ``E_se`` / ``alpha_se``: standard errors (sqrt of the diagonal of ``cov``, the 2×2
    covariance of ``(E, α)`` as nested tuples); ``r2_log``: R² of ``ln y`` against ``ln ŷ``.
    """

    E: float
    alpha: float
    E_se: float
    alpha_se: float
    cov: tuple[tuple[float, float], tuple[float, float]]
    r2_log: float
    n: int

    def predict(self, x: float | Sequence[float] | np.ndarray) -> np.ndarray:
        """``E·x^α`` as a float array of ``x``'s shape (0-d for a scalar)."""
        return self.E * np.power(np.asarray(x, dtype=float), self.alpha)

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-able dict (``cov`` as a list of two lists)."""
        out = asdict(self)
        out["cov"] = [list(row) for row in self.cov]
        return out

    def formula(self, symbol: str = "X") -> str:
        """e.g. ``"3.1e-03(±4.2e-04)·C^0.250(±0.031)"``."""
        return f"{self.E:.3g}(±{self.E_se:.2g})·{symbol}^{self.alpha:.3f}(±{self.alpha_se:.3f})"


def _as_points(values: object, name: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"fit_power_law: {name} must be numbers, got {values!r}") from exc
    if arr.ndim != 1:
        raise ConfigError(f"fit_power_law: {name} must be one-dimensional, got shape {arr.shape}")
    return arr


def _check_points(x: np.ndarray, y: np.ndarray, sigma: np.ndarray | None) -> None:
    if x.shape != y.shape:
        raise ConfigError(f"fit_power_law: x and y must have the same length, got {x.size} and {y.size}")
    if sigma is not None and sigma.shape != x.shape:
        raise ConfigError(f"fit_power_law: sigma must have one value per point ({x.size}), got {sigma.size}")
    for i in range(x.size):
        where = f"point {i} (x={x[i]:g}, y={y[i]:g})"
        if not (math.isfinite(x[i]) and math.isfinite(y[i])):
            raise ConfigError(f"fit_power_law: {where} is not finite")
        if x[i] <= 0:
            raise ConfigError(f"fit_power_law: {where}: x must be > 0 for a power law")
        if y[i] <= 0:
            raise ConfigError(f"fit_power_law: {where}: y must be > 0 for a power law")
        if sigma is not None and not (math.isfinite(sigma[i]) and sigma[i] > 0):
            raise ConfigError(f"fit_power_law: {where}: sigma must be finite and > 0, got {sigma[i]:g}")
    if x.size < 3:
        raise ConfigError(f"fit_power_law: needs at least 3 points for 2 parameters and an error, got {x.size}")
    if np.unique(x).size < 2:
        raise ConfigError(f"fit_power_law: needs at least 2 distinct x values, got only x={x[0]:g}")


def fit_power_law(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    sigma: Sequence[float] | np.ndarray | None = None,
    *,
    absolute_sigma: bool = False,
) -> PowerLawFit:
    """Least-squares fit of ``y = E·x^α`` in the original space (module docstring).

    ``sigma``: optional per-point standard deviations of ``y`` (curve_fit's weights
    ``1/sigma²``); ``absolute_sigma`` as in curve_fit. Raises :class:`ConfigError`, naming the
    point, for ``x ≤ 0``, ``y ≤ 0``, non-finite values or a bad sigma; also for fewer than 3
    points, mismatched lengths, a single distinct ``x``, or a fit that does not converge.
    """
    xs, ys = _as_points(x, "x"), _as_points(y, "y")
    sig = None if sigma is None else _as_points(sigma, "sigma")
    _check_points(xs, ys, sig)

    log_ref = float(np.mean(np.log(xs)))
    u = np.exp(np.log(xs) - log_ref)  # x / x_ref, geometric mean 1
    slope, intercept = np.polyfit(np.log(u), np.log(ys), 1)  # start: OLS in log-log

    def model(t: np.ndarray, a: float, alpha: float) -> np.ndarray:
        return a * np.power(t, alpha)

    def jac(t: np.ndarray, a: float, alpha: float) -> np.ndarray:
        power = np.power(t, alpha)
        return np.stack([power, a * power * np.log(t)], axis=1)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)  # covariance not estimable -> inf, reported as such
        try:
            (a, alpha), cov_a = curve_fit(
                model, u, ys, p0=(math.exp(intercept), slope), sigma=sig, absolute_sigma=absolute_sigma,
                jac=jac, maxfev=10_000,
            )
        except RuntimeError as exc:
            raise ConfigError(f"fit_power_law: the fit did not converge on {xs.size} points: {exc}") from exc

    scale = math.exp(-alpha * log_ref)  # x_ref^(−α)
    e = a * scale
    transform = np.array([[scale, -e * log_ref], [0.0, 1.0]])  # d(E, α)/d(A, α)
    cov = transform @ np.asarray(cov_a, dtype=float) @ transform.T
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None))

    log_resid = np.log(ys) - np.log(model(u, a, alpha))
    ss_tot = float(np.sum((np.log(ys) - np.log(ys).mean()) ** 2))
    r2 = 1.0 - float(np.sum(log_resid**2)) / ss_tot if ss_tot > 0 else float("nan")
    return PowerLawFit(
        E=float(e), alpha=float(alpha), E_se=float(se[0]), alpha_se=float(se[1]),
        cov=((float(cov[0, 0]), float(cov[0, 1])), (float(cov[1, 0]), float(cov[1, 1]))),
        r2_log=r2, n=int(xs.size),
    )


def plot_power_law(
    fits: Mapping[str, tuple[Sequence[float], Sequence[float], PowerLawFit | None]],
    xlabel: str,
    ylabel: str,
    *,
    symbol: str = "X",
    title: str | None = None,
    size: tuple[int, int] = (800, 600),
    dpi: int = 100,
) -> Image.Image:
    """Log-log plot: per label, the points ``(x, y)`` and, when the fit is not None, the line
    ``E·X^α`` over the points' x range; the legend gives ``E(±se)·X^α(±se)`` and R².

    Points with ``x ≤ 0`` or ``y ≤ 0`` cannot be shown on log axes; they are left out and the
    legend says how many (a panel with no point left says so instead of failing). Returns an
    RGB PIL image of exactly ``size`` = (width, height) pixels: rendered at that size, not
    cropped to the drawing as ``ttsctr.baselines.report.figure_image`` does (``bbox_inches="tight"``).
    """
    if not fits:
        raise ConfigError("plot_power_law: no series to plot")
    width, height = size
    if width < 50 or height < 50:
        raise ConfigError(f"plot_power_law: size must be at least 50×50 pixels, got {size}")
    fig, ax = plt.subplots(figsize=(width / dpi, height / dpi), dpi=dpi)
    colours = plt.cm.tab10(np.arange(len(fits)) % 10)
    any_shown = False
    for colour, (label, (x, y, fit)) in zip(colours, fits.items()):
        xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        shown = (xs > 0) & (ys > 0) & np.isfinite(xs) & np.isfinite(ys)
        note = f" ({int((~shown).sum())} point(s) ≤ 0 not shown)" if (~shown).any() else ""
        any_shown = any_shown or bool(shown.any())
        if fit is None:
            ax.scatter(xs[shown], ys[shown], color=colour, zorder=3, label=f"{label}: no fit{note}")
            continue
        ax.scatter(xs[shown], ys[shown], color=colour, zorder=3)
        if shown.any():
            grid = np.geomspace(xs[shown].min(), xs[shown].max(), 100)
            ax.plot(grid, fit.predict(grid), color=colour,
                    label=f"{label}: {fit.formula(symbol)}, R²={fit.r2_log:.3f}{note}")
    if any_shown:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
    else:  # log axes need a positive point; say why the panel is empty
        ax.text(0.5, 0.5, "no point with x > 0 and y > 0 to show on log axes", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.canvas.draw()
    image = Image.frombuffer("RGBA", fig.canvas.get_width_height(), bytes(fig.canvas.buffer_rgba()))
    plt.close(fig)
    image = image.convert("RGB")
    if image.size != (width, height):  # fractional inch sizes can round by a pixel
        image = image.resize((width, height))
    return image
