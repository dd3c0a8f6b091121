"""Server-side SVG bar charts (no script, no external asset): one bar per group, the target as a line.

Hand-drawn rather than a charting library: a bar chart with a target line is a few rectangles, and
the markup stays small, accessible (``role="img"`` with a title listing every value) and CSP-clean.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH, BAR_HEIGHT, GAP, LABEL = 480, 22, 6, 150


def bar_chart(title: str, bars: Sequence[tuple[str, float | None]], *, target: float | None = None,
              unit: str = "ratio") -> str:
    """An SVG of horizontal bars (``(label, value)``; None: no data) and a dashed target line."""
    values = [v for _, v in bars if v is not None] + ([target] if target is not None else [])
    top = max(values + [1.0 if unit == "ratio" else 0.0]) or 1.0
    span = WIDTH - LABEL - 60
    height = len(bars) * (BAR_HEIGHT + GAP) + GAP
    described = "; ".join(f"{label}: {_fmt(value, unit)}" for label, value in bars)
    parts = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
             f'width="{WIDTH}" height="{height}" role="img" aria-label="{escape(title)}">',
             f"<title>{escape(title)}: {escape(described)}"
             f"{f'; target {_fmt(target, unit)}' if target is not None else ''}</title>"]
    for i, (label, value) in enumerate(bars):
        y = GAP + i * (BAR_HEIGHT + GAP)
        width = 0 if value is None else max(1, round(span * value / top))
        parts.append(f'<text x="0" y="{y + 16}">{escape(label[:22])}</text>')
        parts.append(f'<rect class="bar" x="{LABEL}" y="{y}" width="{width}" height="{BAR_HEIGHT}"/>')
        parts.append(f'<text x="{LABEL + width + 4}" y="{y + 16}">{escape(_fmt(value, unit))}</text>')
    if target is not None:
        x = LABEL + round(span * target / top)
        parts.append(f'<line class="target" x1="{x}" y1="0" x2="{x}" y2="{height}"/>')
    parts.append("</svg>")
    return "".join(parts)


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "no data"
    return f"{value:.1%}" if unit == "ratio" else f"{value:.1f}"
