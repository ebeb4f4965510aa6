"""Small SVG charts drawn on the server (no plotting library, no script): bars and lines."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

__all__ = ["bar_chart", "line_chart"]

_W, _H, _LEFT, _BOTTOM, _TOP = 420, 200, 44, 46, 22
_COLOURS = ("#3b6ea5", "#c0504d", "#4f9d5d", "#8064a2", "#d08a2e", "#4bacc6")


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.2e}"


def bar_chart(title: str, labels: Sequence[str], values: Sequence[float]) -> str:
    """A vertical bar chart as an inline ``<svg>`` element (labels under the bars, rotated).

    Parameters
    ----------
    title : str
    labels : sequence of str, shape (n,)
    values : sequence of float, shape (n,)
        Non-negative heights.
    """
    esc = html.escape
    n = max(len(values), 1)
    top = max(max(values, default=0.0), 1e-12)
    plot_w, plot_h = _W - _LEFT - 8, _H - _BOTTOM - _TOP
    bw = plot_w / n
    parts = [
        f'<svg class="chart" viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" role="img" '
        f'aria-label="{esc(title)}"><title>{esc(title)}</title>',
        f'<text x="{_W / 2}" y="14" text-anchor="middle" class="chart-title">{esc(title)}</text>',
        f'<text x="{_LEFT - 4}" y="{_TOP + 8}" text-anchor="end">{_fmt(top)}</text>',
        f'<text x="{_LEFT - 4}" y="{_TOP + plot_h}" text-anchor="end">0</text>',
        f'<line x1="{_LEFT}" y1="{_TOP + plot_h}" x2="{_W - 8}" y2="{_TOP + plot_h}" '
        'stroke="#888"/>',
    ]
    for j, (label, v) in enumerate(zip(labels, values, strict=True)):
        h = plot_h * float(v) / top
        x = _LEFT + j * bw
        parts.append(
            f'<rect x="{x + bw * 0.1:.1f}" y="{_TOP + plot_h - h:.1f}" width="{bw * 0.8:.1f}" '
            f'height="{h:.1f}" fill="{_COLOURS[0]}"><title>{esc(label)}: {_fmt(float(v))}'
            "</title></rect>"
        )
        lx, ly = x + bw / 2, _TOP + plot_h + 8
        parts.append(
            f'<text x="{lx:.1f}" y="{ly}" transform="rotate(40 {lx:.1f} {ly})" '
            f'class="tick">{esc(label[:12])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def line_chart(title: str, series: Mapping[str, Sequence[tuple[float, float]]]) -> str:
    """Lines of ``(x, y)`` points, one colour per series, as an inline ``<svg>`` element."""
    esc = html.escape
    points = [p for s in series.values() for p in s]
    parts = [
        f'<svg class="chart" viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" role="img" '
        f'aria-label="{esc(title)}"><title>{esc(title)}</title>',
        f'<text x="{_W / 2}" y="14" text-anchor="middle" class="chart-title">{esc(title)}</text>',
    ]
    if not points:
        parts.append(f'<text x="{_W / 2}" y="{_H / 2}" text-anchor="middle">no points</text>')
        return "".join(parts) + "</svg>"
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y0, y1 = min(p[1] for p in points), max(p[1] for p in points)
    xs, ys = (x1 - x0) or 1.0, (y1 - y0) or 1.0
    plot_w, plot_h = _W - _LEFT - 8, _H - _BOTTOM - _TOP

    def at(x: float, y: float) -> str:
        return f"{_LEFT + plot_w * (x - x0) / xs:.1f},{_TOP + plot_h * (1 - (y - y0) / ys):.1f}"

    parts += [
        f'<text x="{_LEFT - 4}" y="{_TOP + 8}" text-anchor="end">{_fmt(y1)}</text>',
        f'<text x="{_LEFT - 4}" y="{_TOP + plot_h}" text-anchor="end">{_fmt(y0)}</text>',
        f'<text x="{_LEFT}" y="{_TOP + plot_h + 14}">{_fmt(x0)}</text>',
        f'<text x="{_W - 8}" y="{_TOP + plot_h + 14}" text-anchor="end">{_fmt(x1)}</text>',
    ]
    for j, (name, pts) in enumerate(series.items()):
        colour = _COLOURS[j % len(_COLOURS)]
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
            f'points="{" ".join(at(x, y) for x, y in pts)}"><title>{esc(name)}</title></polyline>'
        )
        parts.append(
            f'<text x="{_LEFT + 4 + 110 * (j % 3)}" y="{_H - 6 - 12 * (j // 3)}" '
            f'fill="{colour}">{esc(name[:18])}</text>'
        )
    return "".join(parts) + "</svg>"
