"""The console's pictures, drawn on the server as inline SVG/HTML: nothing to download, no
CDN, and the same markup for the page and its JSON refresh."""

from __future__ import annotations

from datetime import datetime

from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

# Segment order and colours of the progress bar (the legend uses the same).
SEGMENTS = (
    ("sent", "#2e7d32"),
    ("pending", "#90a4ae"),
    ("failed", "#c62828"),
    ("expired", "#ef6c00"),
    ("cancelled", "#6d4c41"),
)
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 480, 200, 44, 28, 12
LABEL_FORMAT = {"minute": "%H:%M", "hour": "%d %b %H:00", "day": "%d %b"}


def progress_bar(numbers: dict[str, int]) -> SafeString:
    """A stacked bar (sent / pending / failed / expired / cancelled of total) with a title
    per segment; data-* attributes carry the numbers for tests and the refresh script."""
    total = numbers.get("total", 0)
    segments = []
    for name, colour in SEGMENTS if total else ():
        share = 100 * numbers.get(name, 0) / total
        if share:
            segments.append((name, colour, f"{share:.3f}", f"{numbers[name]:,} {name}"))
    bar = format_html_join(
        "",
        '<span class="console-seg console-{}" style="background:{};width:{}%" title="{}"></span>',
        segments,
    )
    sent = numbers.get("sent", 0)
    unsent = sum(numbers.get(name, 0) for name in ("failed", "expired", "cancelled"))
    done = sent + unsent
    not_sent = f", {unsent:,} not sent" if unsent else ""  # a failed run must not read as a success
    label = f"{sent:,} sent{not_sent} of {total:,} · {100 * done // total} % done" if total else ""
    label = label or "no messages"
    return format_html(
        '<div class="console-progress" data-total="{}" data-sent="{}">'
        '<span class="console-bar">{}</span><span class="console-label">{}</span></div>',
        total,
        numbers.get("sent", 0),
        bar,
        label,
    )


def sent_chart(series: dict, noun: str = "sent") -> SafeString:
    """Bars of messages sent per bucket (minute, hour or day), with the peak and the first and
    last bucket labelled; an empty chart says so."""
    points = series["points"]
    if not points:
        return format_html('<p class="console-chart-empty">Nothing {} yet.</p>', noun)
    peak = max(sent for _, sent in points) or 1
    plot_width, plot_height = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    step = plot_width / len(points)
    bars = []
    for index, (at, sent) in enumerate(points):
        height = plot_height * sent / peak
        bars.append(
            f'<rect class="console-sent-bar" x="{LEFT + index * step:.2f}"'
            f' y="{TOP + plot_height - height:.2f}" width="{max(step * 0.85, 0.5):.2f}"'
            f' height="{height:.2f}" fill="#1565c0" data-sent="{sent}">'
            f"<title>{escape(_label(at, series['bucket']))}: {sent:,} {escape(noun)}</title></rect>"
        )
    first, last = _label(points[0][0], series["bucket"]), _label(points[-1][0], series["bucket"])
    axis_y = TOP + plot_height
    svg = (
        f'<svg class="console-chart" xmlns="http://www.w3.org/2000/svg" role="img"'
        f' viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}"'
        f' data-points="{len(points)}" data-total="{sum(s for _, s in points)}">'
        f"<title>Messages {escape(noun)} per {series['bucket']}</title>"
        f'<line x1="{LEFT}" y1="{axis_y}" x2="{WIDTH - 8}" y2="{axis_y}" stroke="#999"/>'
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{axis_y}" stroke="#999"/>'
        f'<text x="{LEFT - 4}" y="{TOP + 10}" text-anchor="end" font-size="11">{peak:,}</text>'
        f'<text x="{LEFT - 4}" y="{axis_y}" text-anchor="end" font-size="11">0</text>'
        f'<text x="{LEFT}" y="{HEIGHT - 8}" font-size="11">{escape(first)} UTC</text>'
        f'<text x="{WIDTH - 8}" y="{HEIGHT - 8}" text-anchor="end" font-size="11">'
        f"{escape(last)} UTC</text>"
        f"{''.join(bars)}</svg>"
    )
    return mark_safe(svg)  # noqa: S308 - every interpolated text is escaped or a number


def _label(iso: str, bucket: str) -> str:
    return datetime.fromisoformat(iso).strftime(LABEL_FORMAT[bucket])


def legend() -> SafeString:
    """The progress bar's colours, named."""
    return format_html(
        '<p class="console-legend">{}</p>',
        format_html_join(
            " ", '<span><i style="background:{}"></i>{}</span>', ((c, n) for n, c in SEGMENTS)
        ),
    )
