"""The report's HTML: one self-contained page (inline styles, images as relative files, no scripts, no network)."""

from __future__ import annotations

from html import escape

STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: .3em .6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; white-space: nowrap; }
.ci { color: #666; font-size: .85em; } tr.ensemble { font-weight: bold; }
figure { margin: 1em 0; } figcaption { color: #555; font-size: .9em; } img { max-width: 100%; }
"""


def format_value(value: float) -> str:
    """How the page writes a metric (the table's point values)."""
    return f"{value:.4f}"


def format_interval(low: float, high: float) -> str:
    return f"[{low:.4f}, {high:.4f}]"


def metrics_table(
    points: dict[str, dict[str, float]], intervals: dict[str, dict[str, tuple[float, float]]], keys: list[str]
) -> str:
    """One row per model (members, then the ensemble), one column per metric key: the value and its 95% interval.
    Each value cell carries ``data-model`` and ``data-metric``."""
    head = "".join(f"<th>{escape(k)}</th>" for k in keys)
    rows = []
    for name, scores in points.items():
        cells = []
        for key in keys:
            low, high = intervals[name][key]
            cells.append(
                f'<td class="num" data-model="{escape(name)}" data-metric="{escape(key)}">'
                f'<span class="value">{format_value(scores[key])}</span> '
                f'<span class="ci">{format_interval(low, high)}</span></td>'
            )
        css = ' class="ensemble"' if name == "ensemble" else ""
        rows.append(f"<tr{css}><th>{escape(name)}</th>{''.join(cells)}</tr>")
    return f'<table id="metrics"><tr><th>model</th>{head}</tr>{"".join(rows)}</table>'


def figure(src: str, caption: str) -> str:
    """An image beside the page (``src`` a file name relative to it) with a caption."""
    if "/" in src or ":" in src:
        raise ValueError(f"figure: expected a file name beside the page, got {src!r}")
    return (
        f'<figure><img src="{escape(src)}" alt="{escape(caption)}"><figcaption>{escape(caption)}</figcaption></figure>'
    )


def rows_table(columns: list[str], rows: list[dict[str, str]]) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{escape(row[c])}</td>" for c in columns) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def paragraph(text: str) -> str:
    return f"<p>{escape(text)}</p>"


def link(href: str, text: str) -> str:
    """A link to a file beside the page."""
    if "/" in href or ":" in href:
        raise ValueError(f"link: expected a file name beside the page, got {href!r}")
    return f'<a href="{escape(href)}">{escape(text)}</a>'


def page(title: str, sections: list[tuple[str, list[str]]]) -> str:
    """The whole document: a title, then each section's heading and HTML parts."""
    body = "".join(f"<section><h2>{escape(h)}</h2>{''.join(parts)}</section>" for h, parts in sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>\n"
    )
