"""HTML building blocks of the report: every text from files or users goes through `esc`.

The page has no JavaScript and loads nothing: images are `data:` URIs, styles are inline, and
the only links are anchors within the page.
"""

import html

STYLE = """
body { font: 15px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0;
       color: #222; background: #fafafa; }
main { max-width: 1150px; margin: 0 auto; padding: 16px 28px 60px; background: #fff; }
h1 { font-size: 24px; margin-bottom: 4px; } h2 { margin-top: 38px; border-bottom: 2px solid #ddd; }
a { color: #14532d; } nav a { margin-right: 14px; } .meta { color: #666; }
table { border-collapse: collapse; margin: 10px 0; font-size: 13px; }
td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f4f4f4; padding: 10px; overflow-x: auto; font-size: 12.5px; }
img { max-width: 100%; display: block; margin: 8px 0; }
.answer { font-size: 17px; background: #f3f3f3; padding: 10px 16px;
          border-left: 5px solid #555; }
.note { color: #555; font-size: 13.5px; } .warn { color: #a15c00; } .bad { color: #c00; }
tr.failed td { background: #fff0f0; }
"""


def esc(value) -> str:
    """`value` as HTML text, quotes included: inert whatever a file or class name contains."""
    return html.escape(str(value), quote=True)


def num(value, digits=4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def table(header, rows, *, numeric=(), row_classes=None) -> str:
    """A table of escaped cells; columns whose index is in `numeric` align right."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = []
    for index, row in enumerate(rows):
        css = f' class="{esc(row_classes[index])}"' if row_classes and row_classes[index] else ""
        cells = "".join(
            f'<td class="num">{esc(c)}</td>' if i in numeric else f"<td>{esc(c)}</td>"
            for i, c in enumerate(row)
        )
        body.append(f"<tr{css}>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def image(uri, alt) -> str:
    if not uri.startswith("data:image/png;base64,"):
        raise ValueError("report images must be embedded PNG data URIs")
    return f'<img src="{uri}" alt="{esc(alt)}">'


def para(text, css=None) -> str:
    return f'<p class="{css}">{esc(text)}</p>' if css else f"<p>{esc(text)}</p>"


def code(text) -> str:
    return f"<pre><code>{esc(text)}</code></pre>"


def section(anchor, title, body) -> str:
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{body}</section>'


# How every report autoprep writes starts: `report -o` replaces only such files (or with force).
REPORT_MARK = "<!DOCTYPE html>\n<!-- autoprep report -->\n"


def page(title, meta, sections) -> str:
    """The whole document: title, meta lines, a table of contents, the sections."""
    nav = "".join(f'<a href="#{esc(anchor)}">{esc(name)}</a>' for anchor, name, _ in sections)
    body = "".join(section(anchor, name, content) for anchor, name, content in sections)
    meta_html = "".join(f'<div class="meta">{esc(line)}</div>' for line in meta)
    return (
        f"{REPORT_MARK}<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{esc(title)}</title><style>{STYLE}</style></head>"
        f"<body><main><h1>{esc(title)}</h1>{meta_html}<nav>{nav}</nav>{body}</main></body></html>\n"
    )
