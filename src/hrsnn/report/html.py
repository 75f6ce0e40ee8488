"""The page of ``hrsnn report``: one self-contained HTML file (inline CSS, figures embedded as base64 PNG, no script,
no external URL) and the same figures as PNG files beside it.

A :class:`Page` is assembled from sections of paragraphs, notes, tables and figures. Every text and table cell is
escaped here (:func:`html.escape`), so run names, configs and notes, which come from users, can never inject markup.
Figures are drawn by callables into a staging folder; :func:`publish` renders the page there and moves the PNGs and
then the HTML into place by rename, so a reader finds either the previous report or the new one, never a mix.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import html
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hrsnn.errors import ConfigError
from hrsnn.experiments.store import RunRecord, _flatten_for_display, code_version

__all__ = ["FigureFile", "Page", "Section", "fmt", "publish", "record_overview", "staging_folder"]

_NAME = re.compile(r"[a-z][a-z0-9-]*")

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1d2330; background: #fafbfc; }
header { background: #1d2330; color: #fff; padding: 1rem 2rem; }
header h1 { margin: 0 0 .3rem 0; font-size: 1.5rem; }
header p { margin: 0; color: #c9d1e0; }
nav ul { list-style: none; margin: .6rem 0 0 0; padding: 0; display: flex; flex-wrap: wrap; gap: .4rem 1.2rem; }
nav a { color: #9cc4ff; text-decoration: none; }
main { padding: 1rem 2rem 3rem 2rem; max-width: 1400px; }
section { margin-top: 2rem; }
h2 { border-bottom: 2px solid #d8dee9; padding-bottom: .2rem; }
table { border-collapse: collapse; margin: .8rem 0; font-size: .88rem; background: #fff; }
caption { caption-side: top; text-align: left; font-weight: 600; padding: .3rem 0; }
th, td { border: 1px solid #d8dee9; padding: .25rem .6rem; text-align: left; vertical-align: top; }
th { background: #eef1f6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #d8dee9; background: #fff; }
figcaption { font-size: .88rem; color: #4c566a; margin-top: .3rem; }
.note { border-left: 4px solid #d08770; background: #fff4ec; padding: .5rem .8rem; margin: .8rem 0; }
.file { font-family: ui-monospace, monospace; }
footer { color: #6b7385; font-size: .8rem; padding: 1rem 2rem; }
"""


def _text(value: Any) -> str:
    """``value`` as escaped HTML text (quotes too, so it is safe inside attributes)."""
    return html.escape(str(value), quote=True)


def _check_name(field: str, name: str) -> str:
    if not isinstance(name, str) or _NAME.fullmatch(name) is None:
        raise ConfigError(field, name, "must be lower-case letters, digits and '-', starting with a letter")
    return name


def fmt(value: Any, digits: int = 4) -> str:
    """A number or value as a table cell: floats to ``digits`` significant digits, None as "-"."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return str(value) if not math.isfinite(value) else f"{value:.{digits}g}"
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class FigureFile:
    """A drawn figure: its name (``<stem>-<name>.png`` beside the report), title, caption and PNG (staging folder)."""

    name: str
    title: str
    caption: str
    path: Path


class Section:
    """One titled part of a :class:`Page`; its blocks are escaped HTML, in the order they were added."""

    def __init__(self, page: Page, anchor: str, title: str) -> None:
        self._page = page
        self.anchor = anchor
        self.title = title
        self.blocks: list[str | FigureFile] = []

    def paragraph(self, text: str) -> None:
        """A paragraph of plain text."""
        self.blocks.append(f"<p>{_text(text)}</p>")

    def note(self, text: str) -> None:
        """A highlighted notice: what the report could not show, and why."""
        self.blocks.append(f'<p class="note">{_text(text)}</p>')

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Any]], *, caption: str = "") -> None:
        """A table; numbers are formatted with :func:`fmt` and right-aligned, everything else shown as text."""
        parts = ["<table>"]
        if caption:
            parts.append(f"<caption>{_text(caption)}</caption>")
        parts.append("<thead><tr>" + "".join(f"<th>{_text(h)}</th>" for h in headers) + "</tr></thead><tbody>")
        for row in rows:
            if len(row) != len(headers):
                raise ConfigError("row", list(row), f"must have {len(headers)} cells, one per header")
            cells = (
                f'<td class="num">{_text(fmt(c))}</td>' if _is_number(c) else f"<td>{_text(fmt(c))}</td>" for c in row
            )
            parts.append("<tr>" + "".join(cells) + "</tr>")
        parts.append("</tbody></table>")
        self.blocks.append("".join(parts))

    def mapping(self, items: Mapping[str, Any], *, headers: tuple[str, str] = ("name", "value")) -> None:
        """A two-column table of a (nested) mapping, nested keys joined with dots."""
        self.table(headers, _flatten_for_display(items) if items else [])

    def details(self, summary: str, items: Mapping[str, Any]) -> None:
        """A folded two-column table of a (nested) mapping under a one-line summary."""
        rows = "".join(f"<tr><th>{_text(k)}</th><td>{_text(v)}</td></tr>" for k, v in _flatten_for_display(items))
        self.blocks.append(
            f"<details><summary>{_text(summary)}</summary><table><tbody>{rows}</tbody></table></details>"
        )

    def figure(self, name: str, title: str, draw: Callable[[Path], Any], *, caption: str = "") -> None:
        """Draw a figure with ``draw(path)`` (it writes a PNG to ``path``) and embed it under ``title``."""
        path = self._page._figure_path(name)
        draw(path)
        if not path.is_file():
            raise ConfigError("figure", name, f"was not written to {path}")
        figure = FigureFile(name, title, caption, path)
        self._page._figures.append(figure)
        self.blocks.append(figure)


class Page:
    """A report being assembled in ``staging`` (see the module docstring); figures are ``<stem>-<name>.png``."""

    def __init__(self, title: str, subtitle: str, stem: str, staging: Path) -> None:
        self.title = title
        self.subtitle = subtitle
        self.stem = _check_name("stem", stem)
        self.staging = Path(staging)
        self.sections: list[Section] = []
        self._figures: list[FigureFile] = []

    @property
    def figures(self) -> tuple[FigureFile, ...]:
        """The figures drawn so far, in order."""
        return tuple(self._figures)

    def section(self, anchor: str, title: str) -> Section:
        """A new section, linked from the page's table of contents by ``#anchor``."""
        if any(s.anchor == anchor for s in self.sections):
            raise ConfigError("section", anchor, "is already on the page")
        section = Section(self, _check_name("section", anchor), title)
        self.sections.append(section)
        return section

    def _figure_path(self, name: str) -> Path:
        path = self.staging / f"{self.stem}-{_check_name('figure', name)}.png"
        if any(f.path == path for f in self._figures):
            raise ConfigError("figure", name, "is already on the page")
        return path

    @staticmethod
    def _figure_html(figure: FigureFile) -> str:
        data = base64.b64encode(figure.path.read_bytes()).decode("ascii")
        caption = f" {_text(figure.caption)}" if figure.caption else ""
        return (
            f'<figure id="fig-{figure.name}"><img src="data:image/png;base64,{data}" alt="{_text(figure.title)}">'
            f"<figcaption><strong>{_text(figure.title)}</strong>{caption} "
            f'<span class="file">({_text(figure.path.name)})</span></figcaption></figure>'
        )

    def render(self) -> str:
        """The whole page as one HTML document."""
        nav = "".join(f'<li><a href="#{s.anchor}">{_text(s.title)}</a></li>' for s in self.sections)
        body = []
        for section in self.sections:
            blocks = [self._figure_html(b) if isinstance(b, FigureFile) else b for b in section.blocks]
            body.append(f'<section id="{section.anchor}"><h2>{_text(section.title)}</h2>{"".join(blocks)}</section>')
        version = code_version()
        made = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        commit = f", commit {version['git_commit'][:12]}" if version["git_commit"] else ""
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_text(self.title)}</title><style>{_CSS}</style></head><body>"
            f"<header><h1>{_text(self.title)}</h1><p>{_text(self.subtitle)}</p><nav><ul>{nav}</ul></nav></header>"
            f"<main>{''.join(body)}</main>"
            f"<footer>made by hrsnn {_text(version['hrsnn'])}{_text(commit)} on {made}</footer>"
            "</body></html>\n"
        )


@contextlib.contextmanager
def staging_folder(out_dir: Path, stem: str) -> Iterator[Path]:
    """A temporary folder inside ``out_dir`` (same file system, so renames out of it are atomic), removed after."""
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=f".{stem}.", suffix=".tmp") as staging:
        yield Path(staging)


def publish(page: Page, out_dir: Path) -> Path:
    """Render ``page`` and move its PNGs, then its HTML, from the staging folder into ``out_dir`` (each by an atomic
    rename); older figures of the same report that the new one lacks are removed. Returns the HTML's path."""
    document = page.staging / f"{page.stem}.html"
    document.write_text(page.render(), encoding="utf-8")
    kept = set()
    for figure in page.figures:
        os.replace(figure.path, out_dir / figure.path.name)
        kept.add(figure.path.name)
    target = out_dir / document.name
    os.replace(document, target)
    for old in out_dir.glob(f"{page.stem}-*.png"):
        if old.name not in kept:
            old.unlink()
    return target


def record_overview(page: Page, record: RunRecord) -> None:
    """The sections every report opens with: the run (state, times, seed, owner), its configuration and final
    metrics, and its environment (folded)."""
    run = page.section("run", "Run")
    state = record.state if record.state == record.status else f"{record.state} (recorded as {record.status})"
    rows: list[tuple[str, Any]] = [
        ("id", record.id),
        ("name", record.name),
        ("kind", record.kind),
        ("state", state),
        ("created", record.created_at),
        ("finished", record.finished_at),
        ("seed", record.seed),
        ("epochs / iterations logged", len(record.epochs)),
    ]
    if record.reason:
        rows.append(("reason", record.reason))
    if record.notes:
        rows.append(("notes", record.notes))
    run.table(("field", "value"), rows)
    if record.env:
        run.details("environment (software, hardware, code version)", record.env)
    config = page.section("config", "Configuration")
    config.mapping(record.config, headers=("setting", "value"))
    metrics = page.section("metrics", "Final metrics")
    if record.final_metrics:
        metrics.mapping(record.final_metrics, headers=("metric", "value"))
    else:
        metrics.note(f"no final metrics recorded (the run is {record.state})")
