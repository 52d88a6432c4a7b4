"""Rendering a :class:`ReportContent` as one self-contained HTML file and as a PDF.

HTML: the standard library's ``html.escape`` and base64-embedded PNGs, no template engine and no
external file. PDF: matplotlib's ``PdfPages`` (no system package needed), A4 portrait pages of text
tables followed by one page per picture.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from ..analysis.plots import agg_pyplot
from .content import ReportContent, Table

SIGN_OFF_ROLES = ("Prepared by (medical physicist)", "Checked by (medical physicist)", "Approved by (physician)")
DISCLAIMER = "Research software: check every number against the clinical record before any clinical decision."
A4_INCHES = (8.27, 11.69)
A4_LANDSCAPE_INCHES = A4_INCHES[::-1]

_CSS = """
body { font-family: Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1150px; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.15em; border-bottom: 1px solid #999; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.4em 0; }
th, td { border: 1px solid #bbb; padding: 2px 6px; text-align: left; } th { background: #eee; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.note, .caption { font-size: 0.8em; color: #555; } .warning { color: #a40000; }
.synthetic { background: #ffe08a; padding: 0.4em; font-weight: bold; }
figure { margin: 1em 0; } img { max-width: 100%; border: 1px solid #ccc; }
.signoff td { height: 2.2em; min-width: 14em; }
"""


def _is_number(text) -> bool:
    try:
        float(str(text))
        return True
    except ValueError:
        return False


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    body = "".join(
        "<tr>" + "".join(f"<td class=\"{'num' if _is_number(v) else ''}\">{html.escape(str(v))}</td>" for v in row) + "</tr>"
        for row in table.rows
    )
    note = f"<p class='note'>{html.escape(table.note)}</p>" if table.note else ""
    return f"<h2>{html.escape(table.title)}</h2><table><tr>{head}</tr>{body}</table>{note}"


def render_html(content: ReportContent) -> str:
    """The whole report as one HTML document; pictures are embedded as base64 PNG."""
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(content.label)}</title>",
             f"<style>{_CSS}</style></head><body>",
             f"<h1>SIRT dosimetry report</h1><p><b>{html.escape(content.label)}</b></p>"]
    if content.synthetic:
        parts.append("<p class='synthetic'>SYNTHETIC: made on demonstration data; not a patient result.</p>")
    parts.append(f"<p class='note'>{html.escape(DISCLAIMER)}</p>")
    for table in content.tables:
        parts.append(_html_table(table))
    parts.append("<h2>Warnings</h2>")
    parts.append("<ul>" + "".join(f"<li class='warning'>{html.escape(w)}</li>" for w in content.warnings) + "</ul>"
                 if content.warnings else "<p>None.</p>")
    parts.append("<h2>Pictures</h2>")
    for fig in content.figures:
        data = base64.b64encode(fig.png).decode("ascii")
        legend = html.escape("; ".join(fig.legend), quote=True)
        parts.append(f"<figure id='{html.escape(fig.key)}' data-legend='{legend}'><img alt='{html.escape(fig.title)}' src='data:image/png;base64,{data}'>"
                     f"<figcaption class='caption'><b>{html.escape(fig.title)}.</b> {html.escape(fig.caption)}</figcaption></figure>")
    parts.append("<h2>Sign-off</h2><table class='signoff'><tr><th>role</th><th>name</th><th>date</th><th>signature</th></tr>")
    parts.append("".join(f"<tr><td>{html.escape(r)}</td><td></td><td></td><td></td></tr>" for r in SIGN_OFF_ROLES) + "</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(str(text), width)) or str(text)


def _table_height(table: Table) -> float:
    """Inches a table takes on a PDF page (title, header, rows, note)."""
    return 0.45 + 0.2 * (len(table.rows) + 1) + (0.25 if table.note else 0.0)


def _draw_table(fig, table: Table, top: float) -> float:
    """Draw ``table`` on ``fig`` from ``top`` (figure fraction); returns the fraction below it."""
    height_in = A4_INCHES[1]
    fig.text(0.06, top, table.title, fontsize=10, weight="bold", va="top")
    rows_frac = 0.2 * (len(table.rows) + 1) / height_in
    ax = fig.add_axes([0.06, top - 0.3 / height_in - rows_frac, 0.88, rows_frac])
    ax.axis("off")
    cells = [[str(v) for v in row] for row in table.rows] or [["-"] * len(table.columns)]
    lengths = [max(len(str(c)), *(len(r[i]) for r in cells)) + 2 for i, c in enumerate(table.columns)]
    widths = [n / sum(lengths) for n in lengths]
    t = ax.table(cellText=cells, colLabels=list(table.columns), colWidths=widths, loc="upper left", cellLoc="left")
    t.auto_set_font_size(False)
    t.set_fontsize(6.5 if len(table.columns) > 6 else 7.5)
    t.scale(1.0, 1.0)
    for (row, _), cell in t.get_celld().items():
        cell.set_height(1.0 / (len(cells) + 1))
        if row == 0:
            cell.set_facecolor("#eeeeee")
    bottom = top - (0.3 / height_in) - rows_frac
    if table.note:
        fig.text(0.06, bottom - 0.05 / height_in, _wrap(table.note, 130), fontsize=6.5, color="#555555", va="top")
        bottom -= 0.25 / height_in
    return bottom - 0.15 / height_in


def _page(plt, content: ReportContent, number: int, size=A4_INCHES):
    fig = plt.figure(figsize=size)
    fig.text(0.06, 0.975, f"SIRT dosimetry report | {content.label}", fontsize=7.5, va="top")
    fig.text(0.94, 0.02, f"page {number}", fontsize=7, ha="right")
    fig.text(0.06, 0.02, DISCLAIMER, fontsize=6, color="#555555")
    return fig


def render_pdf(content: ReportContent, path: Path) -> None:
    """The report as a PDF: tables, warnings and the sign-off block, then one page per picture."""
    from matplotlib.backends.backend_pdf import PdfPages

    plt = agg_pyplot()
    usable_in = A4_INCHES[1] * 0.86
    blocks: list[Table] = list(content.tables)
    blocks.append(Table("Warnings", ("warning",), tuple((_wrap(w, 150).split("\n")[0] + (" ..." if len(w) > 150 else ""),)
                                                        for w in content.warnings) or (("none",),)))
    blocks.append(Table("Sign-off", ("role", "name", "date", "signature"), tuple((r, "", "", "") for r in SIGN_OFF_ROLES)))
    number = 0
    with PdfPages(str(path)) as pdf:
        info = pdf.infodict()
        info["Title"] = f"SIRT dosimetry report: {content.label}"
        info["Creator"] = "SlicerSIRT"
        fig, used = None, 0.0
        for table in blocks:
            need = _table_height(table)
            if fig is None or used + need > usable_in:
                if fig is not None:
                    pdf.savefig(fig)
                    plt.close(fig)
                number += 1
                fig, used = _page(plt, content, number), 0.0
                if number == 1:
                    fig.text(0.06, 0.95, "SIRT dosimetry report", fontsize=15, weight="bold", va="top")
                    if content.synthetic:
                        fig.text(0.55, 0.95, "SYNTHETIC DATA", fontsize=13, color="#a40000", weight="bold", va="top")
                    used = 0.5
            _draw_table(fig, table, 0.95 - used / A4_INCHES[1])
            used += need
        if fig is not None:
            pdf.savefig(fig)
            plt.close(fig)
        for figure in content.figures:
            number += 1
            fig = _page(plt, content, number, A4_LANDSCAPE_INCHES)  # pictures are wide: landscape pages
            image = plt.imread(io.BytesIO(figure.png), format="png")
            h, w = image.shape[:2]
            page_w, page_h = A4_LANDSCAPE_INCHES
            height = min(0.78, 0.88 * page_w / page_h * h / w)
            width = height * page_h / page_w * w / h
            ax = fig.add_axes([0.06, 0.92 - height, width, height])
            ax.imshow(image)
            ax.axis("off")
            fig.text(0.06, 0.95, figure.title, fontsize=10, weight="bold", va="top")
            fig.text(0.06, 0.905 - height, _wrap(figure.caption, 170), fontsize=7.5, va="top")
            pdf.savefig(fig)
            plt.close(fig)
