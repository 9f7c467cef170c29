"""The SVG itself: the document (:class:`SvgMarkup`, :class:`Canvas`), the palette, and the
elements every chart draws with (text, lines, bars, markers).

Every string put into an element goes through :func:`.text.esc` here, so the chart modules
never build markup by hand.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from .text import clean, esc, middle, num, text_width, truncate, wrap

WIDTH = 720
FONT_STACK = (
    "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, "
    "'Liberation Sans', 'DejaVu Sans', sans-serif"
)
TITLE_SIZE = 15
LABEL_SIZE = 11
LEGEND_SIZE = 12


class SvgMarkup(str):
    """An SVG document as a string; ``__html__`` tells Django it is already escaped."""

    __slots__ = ()

    def __html__(self) -> str:
        return str(self)


@dataclass(frozen=True)
class Palette:
    """Colours for the charts.

    ``series`` defaults to the Okabe-Ito palette (distinguishable with the common colour-vision
    deficiencies), without its yellow, which is too light on white. Text is always one of the
    two greys, both above 7:1 on white.
    """

    series: tuple[str, ...] = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9")
    text: str = "#111827"
    muted: str = "#4B5563"
    grid: str = "#E5E7EB"
    axis: str = "#9CA3AF"
    background: str = "#FFFFFF"
    track: str = "#EEF1F5"
    increase: str = "#0072B2"
    decrease: str = "#D55E00"
    total: str = "#334155"
    over_target: str = "#E69F00"
    # Indicator tiers, threshold -> target -> stretch: one hue, getting darker.
    tier_bands: tuple[str, ...] = ("#EEF5FB", "#DCEAF6", "#C4DCF0")
    tier_lines: tuple[str, ...] = ("#7AA6CC", "#3F7FB5", "#0B5A94")
    result: str = "#111827"
    baseline: str = "#6B7280"

    def colour(self, index: int) -> str:
        return self.series[index % len(self.series)]


DEFAULT_PALETTE = Palette()


# --------------------------------------------------------------------------- elements


def _attrs(attrs: dict[str, object]) -> str:
    parts = []
    for key, value in attrs.items():
        if value is None:
            continue
        if isinstance(value, float):
            rendered = num(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            rendered = str(value)
        else:
            rendered = esc(value)
        parts.append(f' {key}="{rendered}"')
    return "".join(parts)


def el(tag: str, content: str | None = None, **attrs: object) -> str:
    names = {k.rstrip("_").replace("_", "-"): v for k, v in attrs.items()}
    if content is None:
        return f"<{tag}{_attrs(names)}/>"
    return f"<{tag}{_attrs(names)}>{content}</{tag}>"


def draw_text(
    x: float,
    y: float,
    text: str,
    *,
    size: float = LABEL_SIZE,
    fill: str,
    anchor: str = "start",
    weight: str | None = None,
    max_width: float | None = None,
    tooltip: str | None = None,
) -> str:
    """One line of text at baseline ``y``; truncated with an ellipsis, full text as tooltip."""
    shown = clean(text)
    if max_width is not None:
        shown = truncate(shown, max_width, size)
    node = el(
        "text",
        esc(shown),
        x=float(x),
        y=float(y),
        font_size=size,
        fill=fill,
        text_anchor=None if anchor == "start" else anchor,
        font_weight=weight,
    )
    full = tooltip if tooltip is not None else (text if shown != clean(text) else None)
    if full is not None:
        return f"<g><title>{esc(full)}</title>{node}</g>"
    return node


def draw_lines(
    x: float,
    y: float,
    text: str,
    *,
    max_width: float,
    size: float = LABEL_SIZE,
    fill: str,
    anchor: str = "middle",
    max_lines: int = 2,
) -> str:
    """Wrapped text, first baseline at ``y``; tooltip with the full text if anything was cut."""
    cleaned = clean(text)
    wrapped = wrap(cleaned, max_width, size, max_lines)
    nodes = "".join(
        el(
            "text",
            esc(line),
            x=float(x),
            y=float(y + i * size * 1.25),
            font_size=size,
            fill=fill,
            text_anchor=None if anchor == "start" else anchor,
        )
        for i, line in enumerate(wrapped)
    )
    if " ".join(wrapped) != " ".join(cleaned.split()):
        return f"<g><title>{esc(cleaned)}</title>{nodes}</g>"
    return nodes


def tooltip_rect(content_title: str, **attrs: object) -> str:
    return el("rect", f"<title>{esc(content_title)}</title>", **attrs)


def hline(
    x1: float, x2: float, y: float, colour: str, width: float = 1.0, dash: str | None = None
) -> str:
    return el(
        "line",
        x1=float(x1),
        y1=float(y),
        x2=float(x2),
        y2=float(y),
        stroke=colour,
        stroke_width=float(width),
        stroke_dasharray=dash,
    )


def bar_rect(x: float, y0: float, y1: float, width: float, colour: str, tooltip: str) -> str:
    top, bottom = min(y0, y1), max(y0, y1)
    height = max(bottom - top, 0.0)
    if 0 < height < 1:
        # A tiny non-zero value still shows as a hairline.
        height = 1.0
        top = y0 - 1 if y1 < y0 else y0
    return tooltip_rect(
        tooltip,
        x=float(x),
        y=float(top),
        width=float(max(width, 1.0)),
        height=float(height),
        rx=2.0 if height >= 4 and width >= 6 else None,
        fill=colour,
    )


MARKERS = ("circle", "square", "diamond", "triangle")


def marker(kind: str, x: float, y: float, colour: str, background: str, tooltip: str) -> str:
    title = f"<title>{esc(tooltip)}</title>"
    common = {"fill": colour, "stroke": background, "stroke_width": 1.5}
    if kind == "circle":
        return el("circle", title, cx=x, cy=y, r=4.0, **common)
    if kind == "square":
        return el("rect", title, x=x - 3.5, y=y - 3.5, width=7.0, height=7.0, **common)
    if kind == "diamond":
        corners = [(x, y - 5), (x + 5, y), (x, y + 5), (x - 5, y)]
    else:
        corners = [(x, y - 5), (x + 5, y + 4), (x - 5, y + 4)]
    points = " ".join(f"{num(px)},{num(py)}" for px, py in corners)
    return el("polygon", title, points=points, **common)


def polylines(points: Sequence[tuple[float, float] | None], colour: str, width: float = 2.0) -> str:
    """One polyline per unbroken run of points; ``None`` breaks the line (a gap)."""
    runs: list[list[tuple[float, float]]] = [[]]
    for point in points:
        if point is None:
            runs.append([])
        else:
            runs[-1].append(point)
    out = []
    for run in runs:
        if len(run) >= 2:
            out.append(
                el(
                    "polyline",
                    points=" ".join(f"{num(x)},{num(y)}" for x, y in run),
                    fill="none",
                    stroke=colour,
                    stroke_width=width,
                    stroke_linejoin="round",
                    stroke_linecap="round",
                )
            )
    return "".join(out)


# --------------------------------------------------------------------------- the document


@dataclass
class Canvas:
    """Accumulates the body of a chart, then wraps it in the accessible document."""

    title: str
    palette: Palette
    show_title: bool
    parts: list[str] = field(default_factory=list)

    def add(self, *markup: str) -> None:
        self.parts.extend(markup)

    def header(self) -> float:
        """Draws the visible title; returns the y where the next block starts."""
        if not self.show_title:
            return 12.0
        self.add(
            draw_text(
                0,
                18,
                self.title,
                size=TITLE_SIZE,
                fill=self.palette.text,
                weight="600",
                max_width=WIDTH,
            )
        )
        return 34.0

    def legend(self, y: float, items: Sequence[tuple[str, str, str]]) -> float:
        """Legend entries (name, colour, marker) in rows from ``y``; returns the y below it."""
        if not items:
            return y
        x = 0.0
        row_height = 20.0
        rows = 1
        max_item = WIDTH / 2
        for name, colour, kind in items:
            label_width = min(text_width(name, LEGEND_SIZE), max_item - 20)
            item_width = 16 + label_width + 18
            if x > 0 and x + item_width > WIDTH:
                x = 0.0
                y += row_height
                rows += 1
            cy = y + 7
            if kind == "line":
                self.add(
                    hline(x, x + 12, cy, colour, 2.0),
                    el("circle", cx=x + 6, cy=cy, r=3.0, fill=colour),
                )
            elif kind == "dash":
                self.add(hline(x, x + 12, cy, colour, 1.5, "4 3"))
            else:
                self.add(el("rect", x=x, y=cy - 5, width=10.0, height=10.0, rx=2.0, fill=colour))
            self.add(
                draw_text(
                    x + 16,
                    middle(cy, LEGEND_SIZE),
                    name,
                    size=LEGEND_SIZE,
                    fill=self.palette.muted,
                    max_width=label_width,
                )
            )
            x += item_width
        return y + row_height + 4

    def render(self, height: float, desc: str) -> SvgMarkup:
        body = "".join(self.parts)
        digest = hashlib.sha256(f"{self.title}\x00{desc}\x00{body}".encode()).hexdigest()[:10]
        title_id, desc_id = f"chart-{digest}-title", f"chart-{digest}-desc"
        height_text = num(float(height))
        head = (
            '<svg xmlns="http://www.w3.org/2000/svg"'
            f' viewBox="0 0 {WIDTH} {height_text}" width="100%"'
            ' preserveAspectRatio="xMidYMid meet"'
            f' role="img" aria-labelledby="{title_id} {desc_id}"'
            f' font-family="{esc(FONT_STACK)}"'
            ' style="display:block;max-width:100%;height:auto;overflow:visible">'
        )
        return SvgMarkup(
            head
            + f'<title id="{title_id}">{esc(self.title)}</title>'
            + f'<desc id="{desc_id}">{esc(desc)}</desc>'
            + body
            + "</svg>"
        )


def new_canvas(title: str, palette: Palette | None, show_title: bool) -> Canvas:
    if not isinstance(title, str) or not title.strip():
        raise ValueError("a chart needs a title")
    return Canvas(title=title, palette=palette or DEFAULT_PALETTE, show_title=show_title)


def no_data(canvas: Canvas, top: float, height: float, message: str = "No data") -> SvgMarkup:
    canvas.add(
        el(
            "rect",
            x=0.0,
            y=top,
            width=float(WIDTH),
            height=height,
            rx=6.0,
            fill=canvas.palette.track,
        ),
        draw_text(
            WIDTH / 2,
            middle(top + height / 2, 13),
            message,
            size=13,
            fill=canvas.palette.muted,
            anchor="middle",
        ),
    )
    return canvas.render(top + height + 4, f"{canvas.title}. {message}.")
