"""``covault demo``'s report: each step's results as readable text, Markdown and HTML.

A step returns a dict of plain values (numbers, text, nested dicts and lists). They are
shown as people read them: nested key/value lists, lists joined with commas, yes/no,
numbers with separators; never a Python ``repr``. ``OUT/index.html`` links every file
each step wrote (a step writes under ``OUT/<step>/``) and the shared ones (ledger,
keysets, summaries); it is one self-contained page: inline style, no script, nothing
loaded from elsewhere, every value escaped.
"""

from __future__ import annotations

import datetime as _dt
import html
import math
from pathlib import Path
from typing import Any
from urllib.parse import quote

__all__ = ["format_scalar", "text_lines", "markdown", "index_html"]

_MAX_FILES = 60  # per step in the index; the rest are counted


def _label(key: object, depth: int = 0) -> str:
    """A step's own field names read as words; nested keys are data (column, bank and
    view names) and stay as written."""
    return str(key).replace("_", " ") if depth == 0 else str(key)


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, (dict, list, tuple))


def format_scalar(value: Any) -> str:
    """One value as text: yes/no, separators in numbers, a dash for nothing."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value != 0 and abs(value) < 1e-3:
            return f"{value:.3g}"
        text = f"{value:,.4f}".rstrip("0").rstrip(".")
        return text if text not in ("-0", "") else "0"
    return str(value)


def _inline(values: list[Any] | tuple[Any, ...]) -> str:
    return ", ".join(format_scalar(v) for v in values) if values else "—"


def text_lines(result: dict[str, Any], indent: int = 2) -> list[str]:
    """A step's results for the terminal: ``key: value`` lines, nested ones indented."""
    out: list[str] = []
    pad = " " * indent
    depth = (indent - 2) // 2
    for key, value in result.items():
        key = _label(key, depth)
        if isinstance(value, dict):
            if not value:
                out.append(f"{pad}{key}: —")
                continue
            out.append(f"{pad}{key}:")
            out += text_lines(value, indent + 2)
        elif isinstance(value, (list, tuple)) and all(_is_scalar(v) for v in value):
            out.append(f"{pad}{key}: {_inline(value)}")
        elif isinstance(value, (list, tuple)):
            out.append(f"{pad}{key}:")
            for item in value:
                if isinstance(item, dict):
                    lines = text_lines(item, indent + 4)
                    out.append(f"{pad}  - {lines[0].strip()}" if lines else f"{pad}  -")
                    out += lines[1:]
                else:
                    out.append(f"{pad}  - {format_scalar(item)}")
        else:
            out.append(f"{pad}{key}: {format_scalar(value)}")
    return out


def _md_value(value: Any, root: Path) -> str:
    text = format_scalar(value)
    if isinstance(value, str) and _output_file(value, root) is not None:
        return f"[{_md_escape(text)}]({quote(value)})"
    return _md_escape(text)


def _md_escape(text: str) -> str:
    """Text shown as written in Markdown (a masked ``138****5678`` is not emphasis)."""
    return "".join("\\" + ch if ch in "\\`*_[]<>|#" else ch for ch in text.replace("\n", " "))


def _md_lines(result: dict[str, Any], root: Path, depth: int = 0) -> list[str]:
    out: list[str] = []
    pad = "  " * depth
    for key, value in result.items():
        key = _md_escape(_label(key, depth))
        if isinstance(value, dict) and value:
            out.append(f"{pad}- **{key}**:")
            out += _md_lines(value, root, depth + 1)
        elif isinstance(value, (list, tuple)) and value and not all(map(_is_scalar, value)):
            out.append(f"{pad}- **{key}**:")
            for i, item in enumerate(value, 1):
                if isinstance(item, dict):
                    out.append(f"{pad}  - {i}.")
                    out += _md_lines(item, root, depth + 2)
                else:
                    out.append(f"{pad}  - {_md_value(item, root)}")
        elif isinstance(value, (list, tuple)):
            out.append(f"{pad}- **{key}**: {_md_escape(_inline(value))}")
        else:
            out.append(f"{pad}- **{key}**: {_md_value(value, root)}")
    return out


def markdown(summary: dict[str, dict[str, Any]], root: Path) -> str:
    """``summary.md``: one section per step, its results as nested lists."""
    lines = ["# covault demo", "",
             "Every step on the built-in sample data; the outputs are linked from "
             "[index.html](index.html).", ""]
    for res in summary.values():
        lines += [f"## {_md_escape(str(res['title']))}", ""]
        lines += _md_lines({k: v for k, v in res.items() if k != "title"}, root)
        lines.append("")
    return "\n".join(lines)


# -- HTML ---------------------------------------------------------------------------------

_STYLE = """
body{font:15px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:62rem;padding:0 1rem;
color:#1d2330}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #d6dae3;padding-bottom:.2rem;margin-top:2rem}
nav ol{columns:2}dl{margin:.3rem 0 .3rem 0}dt{font-weight:600;float:left;clear:left;
min-width:14rem;margin-right:1rem}dd{margin:0 0 .2rem 15rem}dd dl{margin:0}
dd dt{min-width:10rem}dd dd{margin-left:11rem}.muted{color:#5b6478}
table{border-collapse:collapse}td{padding:.1rem .8rem .1rem 0;vertical-align:top}
td.size{text-align:right;color:#5b6478;white-space:nowrap}code{font-size:.92em}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _href(rel: str) -> str:
    return _e(quote(rel))


def _output_file(value: str, root: Path) -> Path | None:
    """``value`` as a file under ``root`` when it names one (a step's output path)."""
    if not value or len(value) > 300 or value.startswith(("/", "\\")) or "\n" in value:
        return None
    try:
        path = (root / value).resolve()
        if path.is_file() and path.is_relative_to(root.resolve()):
            return path
    except (OSError, ValueError):
        return None
    return None


def _html_value(value: Any, root: Path, depth: int = 0) -> str:
    if isinstance(value, dict):
        if not value:
            return "—"
        items = "".join(f"<dt>{_e(_label(k, depth))}</dt><dd>{_html_value(v, root, depth + 1)}"
                        f"</dd>" for k, v in value.items())
        return f"<dl>{items}</dl>"
    if isinstance(value, (list, tuple)):
        if all(_is_scalar(v) for v in value):
            return ", ".join(_html_value(v, root, depth + 1) for v in value) or "—"
        return "<ol>" + "".join(f"<li>{_html_value(v, root, depth + 1)}</li>"
                                for v in value) + "</ol>"
    if isinstance(value, str) and _output_file(value, root) is not None:
        return f'<a href="{_href(value)}"><code>{_e(value)}</code></a>'
    return _e(format_scalar(value))


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _files_table(files: list[Path], root: Path) -> str:
    if not files:
        return '<p class="muted">no files</p>'
    rows = []
    for path in files[:_MAX_FILES]:
        rel = path.relative_to(root).as_posix()
        if path.suffix == ".kek":  # a secret: named, not one click away
            cell = f'<code>{_e(rel)}</code> <span class="muted">(key-encryption key)</span>'
        else:
            cell = f'<a href="{_href(rel)}"><code>{_e(rel)}</code></a>'
        rows.append(f'<tr><td>{cell}</td>'
                    f'<td class="size">{_e(_size(path.stat().st_size))}</td></tr>')
    more = len(files) - _MAX_FILES
    tail = f'<p class="muted">and {more:,} more files</p>' if more > 0 else ""
    return f"<table>{''.join(rows)}</table>{tail}"


def _files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()
                   and not p.name.startswith(".")), key=lambda p: p.as_posix())


def index_html(summary: dict[str, dict[str, Any]], root: Path,
               *, generated: _dt.datetime | None = None) -> str:
    """``index.html``: every step's results and the files it wrote, linked."""
    when = (generated or _dt.datetime.now().astimezone()).isoformat(timespec="seconds")
    nav = "".join(f'<li><a href="#{_e(name)}">{_e(res["title"])}</a></li>'
                  for name, res in summary.items())
    sections = []
    claimed: set[Path] = set()
    for name, res in summary.items():
        files = _files(root / name)
        claimed.update(files)
        results = {k: v for k, v in res.items() if k not in ("title", "seconds")}
        sections.append(
            f'<section id="{_e(name)}"><h2>{_e(res["title"])}</h2>'
            f'<p class="muted">step <code>{_e(name)}</code>, '
            f'{_e(format_scalar(res.get("seconds")))} s</p>'
            f"{_html_value(results, root)}<h3>Files</h3>{_files_table(files, root)}</section>")
    shared = [p for p in _files(root) if p not in claimed and p.name != "index.html"]
    sections.append('<section id="shared"><h2>Shared by the steps</h2>'
                    '<p>the ledger every step appends to, the demo keysets (sealed under '
                    '<code>keys/demo.kek</code>) and the summaries</p>'
                    f"{_files_table(shared, root)}</section>")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>covault demo</title><style>{_STYLE}</style></head><body>"
        "<h1>covault demo</h1>"
        f'<p class="muted">every step on the built-in sample data; written {_e(when)}; '
        '<a href="summary.md">summary.md</a>, <a href="summary.json">summary.json</a></p>'
        f"<nav><ol>{nav}</ol></nav>{''.join(sections)}</body></html>\n"
    )
