"""reports/index.html's history strips: each check's state in each of the newest runs of its target, on a time
axis (Allure's history, as static SVG): a check red three mornings in a row, or unreachable since Tuesday,
shows as a run of colour, and each mark says when and links to that run's report. A dead target measures
nothing (its trends are empty), so this is where "22 unreachable, five runs in a row" is seen."""
from __future__ import annotations

from datetime import datetime
from html import escape

from .render import STATE_COLOURS
from .summary import worse

WIDTH, HEIGHT = 300, 14


def _t(iso: str) -> float:
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def add(history: dict, target: str, selection: str, when: str, html: str | None, lines: list[dict]) -> None:
    """Fold one run's evidence lines into history: (target, check) -> [point], newest first."""
    seen: dict[str, str] = {}
    for line in lines:
        state = line.get("mesh_outcome") or line.get("outcome") or "failed"
        title = line.get("short") or line.get("title") or line.get("nodeid")   # short: since issue 22
        seen[str(title)] = worse(seen.get(str(title)), state) if state in STATE_COLOURS else seen.get(str(title), state)
    for title, state in seen.items():
        history.setdefault((target, title), []).append(
            {"when": when, "state": state, "html": html, "selection": selection})


def span(history: dict) -> tuple[float, float]:
    """The time axis every strip shares: the oldest and newest run shown."""
    times = [_t(p["when"]) for points in history.values() for p in points] or [0.0]
    return min(times), max(times)


def strip(points: list[dict], t0: float, t1: float) -> str:
    """One check's history: a mark per run at its time, coloured by its state, with a tooltip and a link."""
    marks = []
    for p in points:
        x = round(2 + (_t(p["when"]) - t0) / ((t1 - t0) or 1.0) * (WIDTH - 8), 1) if t1 > t0 else WIDTH - 6
        colour = STATE_COLOURS.get(p["state"], ("#000", ""))[0]
        rect = (f"<rect x='{x}' y='1' width='4' height='{HEIGHT - 2}' fill='{colour}'>"
                f"<title>{escape(p['when'])}: {escape(p['state'])}</title></rect>")
        marks.append(f"<a href='{escape(p['html'])}'>{rect}</a>" if p.get("html") else rect)
    return (f"<svg class='hist' xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{HEIGHT}' "
            f"viewBox='0 0 {WIDTH} {HEIGHT}'><line x1='0' x2='{WIDTH}' y1='{HEIGHT - 0.5}' y2='{HEIGHT - 0.5}' "
            f"stroke='#ccc'/>{''.join(marks)}</svg>")


def axis(t0: float, t1: float) -> str:
    """The shared time axis under the strips' header: oldest left, newest right (UTC)."""
    def label(t: float) -> str:
        return datetime.utcfromtimestamp(t).strftime("%Y-%m-%d %H:%M") if t else "?"
    return (f"<div class='axis' style='width:{WIDTH}px'><span>{label(t0)}</span>"
            f"<span style='float:right'>{label(t1)} UTC</span></div>")
