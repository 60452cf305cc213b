"""One PNG per resource for the capacity report: the measured history, each window's fitted line carried on
to the limit (or the horizon), and the limit as a line. matplotlib's Agg backend: no display needed."""
from __future__ import annotations

import io
import math
from datetime import datetime, timezone

from .projection import DAY, REACH, Projection


def _matplotlib():
    """matplotlib on first use only: it costs ~0.3 s to import, and every run collects this module (the
    morning checklist must not pay for a chart it never draws). A bare Figure with the Agg canvas that
    savefig picks for PNG: no pyplot, so no display backend and no global figure list to close."""
    import matplotlib.dates as mdates
    from matplotlib.figure import Figure
    return Figure, mdates


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, tz=timezone.utc)


def chart(title: str, history: list[tuple[float, float]], projections: list[Projection], now: float,
          horizon_days: float, unit: str = "", scale: float = 1.0) -> bytes:
    """PNG bytes. `scale` divides every value for display (bytes shown as GiB: scale=2**30)."""
    Figure, mdates = _matplotlib()
    fig = Figure(figsize=(7.5, 3.2), dpi=80)
    ax = fig.subplots()
    if history:
        ax.plot([_dt(t) for t, _ in history], [v / scale for _, v in history], ".", ms=2, color="#1f77b4",
                label="measured")
    limit = next((p.limit for p in projections if p.limit is not None), None)
    # A clear trend is drawn on to the limit, but never past the horizon nor past what its history can
    # tell (projection.REACH); a noisy fit only over its own samples: it says nothing of the future.
    for p, colour in zip(projections, ("#d62728", "#ff7f0e", "#2ca02c", "#9467bd")):
        if p.fit is None:
            continue
        end = now
        if p.clear_trend:
            end = now + min(horizon_days * DAY, REACH * max(p.fit.span, 1.0))
            if p.days_to_limit is not None and not math.isinf(p.days_to_limit):
                end = min(end, now + p.days_to_limit * DAY)
        xs = [p.fit.first_t, max(end, p.fit.last_t)]
        r2 = "flat" if p.fit.r2 is None else f"R²={p.fit.r2:.2f}"
        ax.plot([_dt(x) for x in xs], [p.fit.at(x) / scale for x in xs], "-" if p.clear_trend else ":",
                lw=1, color=colour, label=f"fit {p.window} ({r2}{'' if p.clear_trend else ', no trend'})")
    if limit is not None:
        ax.axhline(limit / scale, color="#c62828", ls="--", lw=1, label=f"limit {limit / scale:.4g}{unit}")
    ax.axvline(_dt(now), color="#999", lw=0.5)
    if all(v >= 0 for _, v in history):
        ax.set_ylim(bottom=0)  # usage is never negative: a falling line below 0 would only squash the rest
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(unit.strip() or "value", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M"))
    ax.legend(fontsize=7, loc="best")
    if not history:
        ax.text(0.5, 0.5, "no history", transform=ax.transAxes, ha="center", va="center", color="#c62828")
    fig.autofmt_xdate()
    # Fixed margins: tight_layout measures every text box and took a third of each chart's time.
    fig.subplots_adjust(left=0.09, right=0.98, top=0.9, bottom=0.2)
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()
