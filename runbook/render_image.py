"""The report row's rendering of an "image" evidence record (Evidence.image): the chart itself, titled.
Kept apart from render.py (its RENDERERS maps "image" to _image)."""
from __future__ import annotations

from html import escape


def _image(title: str, d) -> str:
    # Only our own PNG data URIs become <img>: anything else in a record is shown as text, never as markup.
    if not isinstance(d, str) or not d.startswith("data:image/png;base64,"):
        return f"<div><b>{escape(title)}</b><pre>{escape(str(d)[:200])}</pre></div>"
    return (f"<div><b>{escape(title)}</b><br><img alt='{escape(title)}' src='{escape(d)}' "
            f"style='max-width:640px;border:1px solid #ccc'></div>")
