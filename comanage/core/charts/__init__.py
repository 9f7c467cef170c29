"""Server-side SVG charts for the dashboards and the WeasyPrint PDFs.

Every function here is pure: plain data in (``Decimal`` figures, ``str`` labels), an SVG string
out. The same markup is inlined in the web pages and in the HTML that WeasyPrint turns into
the adjudication and statement PDFs, so it keeps to what both renderers draw the same way:

* presentation attributes only (no ``<style>``, no CSS classes, no ``paint-order``, no
  ``dominant-baseline``: vertical centring is done by hand), no script, no external font: the
  system sans-serif stack;
* an explicit ``viewBox`` with ``width="100%"`` so it scales to its container;
* ``role="img"`` with a ``<title>`` and a ``<desc>`` that states every figure in words, and the
  templates render the underlying data as a table as well;
* deterministic output: the same input gives the same string, byte for byte, so a frozen
  report's PDF hashes the same every time it is rendered;
* text never sits on a coloured fill, so contrast depends only on the two text greys.

Money stays ``Decimal``: figures are formatted through :func:`comanage.core.money.format_money`
(the compact tick form, ``$1.2M``, is derived from it). Floats are refused, as in ``money``;
only pixel geometry is computed in floats.

The returned value is an :class:`SvgMarkup`, a ``str`` whose ``__html__`` makes Django treat it
as already safe; every label inside has been escaped here.
"""

from __future__ import annotations

from .bar import bar_chart
from .indicator import indicator_chart
from .line import line_chart
from .progress import progress_bar_chart
from .scales import nice_ticks
from .svg import DEFAULT_PALETTE, Palette, SvgMarkup
from .text import format_compact_money
from .waterfall import SUBTOTAL, waterfall_chart

__all__ = [
    "DEFAULT_PALETTE",
    "SUBTOTAL",
    "Palette",
    "SvgMarkup",
    "bar_chart",
    "format_compact_money",
    "indicator_chart",
    "line_chart",
    "nice_ticks",
    "progress_bar_chart",
    "waterfall_chart",
]
