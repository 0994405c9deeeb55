"""The authorship report as files: one self-contained HTML page (panels inline as small data-URI
thumbnails), one PDF (fpdf2, with a font that shows non-Latin names when one is installed) and JSON
for tools. The figures come from `memory.authorship.authorship_report`; nothing here computes them.

Files are named after the episode or the series (``authorship-ep01.html``, ``authorship-series.pdf``)
and go to ``PROJECT/reports/`` unless another folder is given; each is written atomically.
"""
from __future__ import annotations

import base64
import html
import io
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memory.authorship import AREAS, CATEGORIES, CATEGORY_LABELS, AuthorshipReport, Item
from memory.errors import InputError, StoryreelError
from memory.project import Project, atomic_write_bytes, atomic_write_text

if TYPE_CHECKING:
    from memory.canon import Canon

log = logging.getLogger(__name__)

FORMATS = ("html", "pdf", "json")
THUMB_PX = 96                 # the longer side of a panel thumbnail, in pixels
#: fonts for the PDF, tried in order (the first found is used; CJK is added as a fallback)
PDF_FONTS = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
             "/usr/share/fonts/dejavu/DejaVuSans.ttf")
PDF_BOLD_FONTS = ("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
                  "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf")
PDF_CJK_FONTS = ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
                 "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc")
_COLOURS = {"written": "#2e7d32", "accepted": "#1565c0", "edited": "#ef6c00", "auto": "#6d6d6d",
            "uploaded": "#8e24aa"}


def reports_dir(project: Project) -> Path:
    return project.root / "reports"


def write_report(report: AuthorshipReport, project: Project, out_dir: Path | None = None,
                 formats: tuple[str, ...] = FORMATS) -> dict[str, Path]:
    """Write the report as ``formats`` into ``out_dir`` (default ``PROJECT/reports/``); returns
    format -> path."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise InputError(f"report format {unknown[0]!r} is not one of {', '.join(FORMATS)}")
    folder = Path(out_dir) if out_dir is not None else reports_dir(project)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot write the report into {folder} ({exc.strerror}); choose a writable "
                         "folder with --out") from exc
    thumbs = _thumbnails(report, project)
    written: dict[str, Path] = {}
    for fmt in formats:
        path = folder / f"{report.name}.{fmt}"
        if fmt == "json":
            atomic_write_text(path, report_json(report))
        elif fmt == "html":
            atomic_write_text(path, report_html(report, thumbs))
        else:
            atomic_write_bytes(path, report_pdf(report, thumbs))
        written[fmt] = path
    return written


def write_render_report(canon: Canon, ledger: Any, project: Project, episode: int, folder: Path,
                        otio_path: Path | None = None) -> dict[str, Path]:
    """After a render: the episode's report next to the cut, and each shot's authorship in the
    timeline's clip metadata (``metadata["storyreel"]["authorship"]``)."""
    from memory.authorship import authorship_report

    report = authorship_report(canon, ledger, episode=episode)
    written = write_report(report, project, folder)
    if otio_path is not None and Path(otio_path).is_file():
        annotate_timeline(Path(otio_path), report)
        written["otio"] = Path(otio_path)
    return written


def annotate_timeline(otio_path: Path, report: AuthorshipReport) -> int:
    """Add each shot's authorship to its clip in an OTIO timeline (in place, atomically); returns
    how many clips got it."""
    import opentimelineio as otio

    timeline = otio.adapters.read_from_file(str(otio_path))
    count = 0
    for clip in timeline.find_clips():
        meta = clip.metadata.get("storyreel")
        shot_id = meta.get("shot_id") if meta is not None else None
        if not shot_id or clip.name != shot_id:     # audio clips carry their shot id too
            continue
        meta["authorship"] = _plain(report.shot_authorship(str(shot_id)))
        count += 1
    atomic_write_text(otio_path, otio.adapters.write_to_string(timeline, "otio_json"))
    return count


def _plain(value: Any) -> Any:
    """OTIO metadata keeps numbers, text, lists and dicts; None becomes ""."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return "" if value is None else value


# ----------------------------------------------------------------------------- JSON


def report_json(report: AuthorshipReport) -> str:
    data = {"generated_at": datetime.now(UTC).isoformat(timespec="seconds"), **report.to_dict()}
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


# ----------------------------------------------------------------------------- HTML


def _thumbnails(report: AuthorshipReport, project: Project) -> dict[str, bytes]:
    """Item id -> a small JPEG of its panel (missing or unreadable pictures are left out)."""
    from PIL import Image

    out: dict[str, bytes] = {}
    for item in report.items:
        if not item.image:
            continue
        try:
            with Image.open(project.resolve(item.image)) as img:
                img = img.convert("RGB")
                img.thumbnail((THUMB_PX, THUMB_PX))
                buf = io.BytesIO()
                img.save(buf, "JPEG", quality=80)
        except (OSError, ValueError, StoryreelError) as exc:
            log.info("no thumbnail for %s (%s): %s", item.item_id, item.image, exc)
            continue
        out[item.item_id] = buf.getvalue()
    return out


def _pct(share: float) -> str:
    return f"{share * 100:.0f}%"


def _ratio(item: Item) -> str:
    if item.category != "edited":
        return ""
    fields = ", ".join(f"{k} ({v:.2f})" for k, v in item.changed_fields.items())
    ratio = "unknown" if item.edit_ratio is None else f"{item.edit_ratio:.2f}"
    return f"edit ratio {ratio}" + (f": {fields}" if fields else "")


def report_title(report: AuthorshipReport) -> str:
    scope = f"episode {report.episode}" if report.episode is not None else "the series"
    return f"Authorship of {report.title or 'this project'} — {scope}"


def summary_rows(report: AuthorshipReport) -> list[list[str]]:
    """The share table (area, then one cell per category, total, rejections) as text."""
    rows = []
    for a in (*report.areas, report.overall):
        rows.append([a.area, *(f"{a.counts[c]} ({_pct(a.shares[c])})" for c in CATEGORIES),
                     str(a.total), str(a.rejections)])
    return rows


def report_html(report: AuthorshipReport, thumbs: dict[str, bytes] | None = None) -> str:
    """One self-contained page: no external files, pictures as data URIs."""
    e = html.escape
    thumbs = thumbs or {}
    head = "".join(f"<th>{e(CATEGORY_LABELS[c])}</th>" for c in CATEGORIES)
    body = "".join("<tr>" + "".join(f"<td>{e(cell)}</td>" for cell in row) + "</tr>" for row in summary_rows(report))
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{e(report_title(report))}</title><style>",
        ("body{font-family:system-ui,'Noto Sans CJK JP','DejaVu Sans',sans-serif;margin:2em;color:#222}"
         "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;"
         "vertical-align:top;text-align:left;font-size:14px}th{background:#f3f3f3}"
         ".cat{color:#fff;border-radius:3px;padding:1px 6px;white-space:nowrap}"
         "img.thumb{max-width:96px;max-height:96px}.muted{color:#777}"),
        "</style></head><body>",
        f"<h1>{e(report_title(report))}</h1>",
        "<p class='muted'>Computed from the decision ledger and canon revisions.</p>",
        "<h2>Shares by area</h2>",
        f"<table><tr><th>area</th>{head}<th>items</th><th>rejections</th></tr>{body}</table>",
        "<h2>Models</h2><table><tr><th>area</th><th>models (items)</th></tr>",
    ]
    for a in report.areas:
        models = ", ".join(f"{m} ({n})" for m, n in a.models.items()) or "—"
        parts.append(f"<tr><td>{e(a.area)}</td><td>{e(models)}</td></tr>")
    parts.append("</table>")
    for area in AREAS:
        items = [i for i in report.items if i.area == area]
        if not items:
            continue
        parts.append(f"<h2>{e(area.capitalize())}</h2><table><tr><th>item</th><th>authorship</th>"
                     "<th>how much changed</th><th>model</th><th>decided</th><th></th></tr>")
        for i in items:
            thumb = (f"<img class='thumb' alt='{e(i.item_id)}' src='data:image/jpeg;base64,"
                     f"{base64.b64encode(thumbs[i.item_id]).decode('ascii')}'>" if i.item_id in thumbs else "")
            text = f"<br><span class='muted'>{e(i.text)}</span>" if i.text and i.kind != "line" else ""
            parts.append(
                f"<tr><td>{e(i.label)}<br><code>{e(i.item_id)}</code>{text}</td>"
                f"<td><span class='cat' style='background:{_COLOURS[i.category]}'>"
                f"{e(CATEGORY_LABELS[i.category])}</span><br><span class='muted'>{e(i.actor)}, {e(i.action)}, "
                f"rev {i.rev}</span></td><td>{e(_ratio(i))}</td><td>{e(i.model or '')}</td>"
                f"<td class='muted'>{e(i.decided_at[:19].replace('T', ' '))}</td><td>{thumb}</td></tr>")
        parts.append("</table>")
    parts.append("<h2>What the director steered away from</h2>")
    if report.rejections:
        parts.append("<table><tr><th>area</th><th>proposal</th><th>note</th><th>when</th></tr>")
        for r in report.rejections:
            parts.append(f"<tr><td>{e(r.area)}</td><td>{e(r.kind)} {e(r.target or '')}</td>"
                         f"<td>{e(r.note) or '<span class=muted>(no note)</span>'}</td>"
                         f"<td class='muted'>{e(r.decided_at[:19].replace('T', ' '))}</td></tr>")
        parts.append("</table>")
    else:
        parts.append("<p class='muted'>No proposal was rejected.</p>")
    parts.append("</body></html>\n")
    return "".join(parts)


# ----------------------------------------------------------------------------- PDF


def _first(paths: tuple[str, ...]) -> str | None:
    return next((p for p in paths if Path(p).is_file()), None)


def _needs_cjk(report: AuthorshipReport) -> bool:
    text = json.dumps(report.to_dict(), ensure_ascii=False)
    return any(ord(ch) >= 0x2E80 for ch in text)


def report_pdf(report: AuthorshipReport, thumbs: dict[str, bytes] | None = None) -> bytes:
    """The report as one PDF. DejaVu Sans (with Noto Sans CJK as a fallback for Japanese or Chinese
    text) when installed; otherwise the built-in Helvetica, with what it cannot show replaced by '?'."""
    from fpdf import FPDF

    thumbs = thumbs or {}
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.set_title(report_title(report))
    regular, bold = _first(PDF_FONTS), _first(PDF_BOLD_FONTS)
    if regular:
        pdf.add_font("Body", "", regular)
        pdf.add_font("Body", "B", bold or regular)
        family = "Body"
        cjk = _first(PDF_CJK_FONTS) if _needs_cjk(report) else None
        if cjk:
            pdf.add_font("CJK", "", cjk)
            pdf.add_font("CJK", "B", cjk)
            pdf.set_fallback_fonts(["CJK"])

        def fit(text: str) -> str:
            return text
    else:
        family = "Helvetica"

        def fit(text: str) -> str:
            return text.encode("latin-1", "replace").decode("latin-1")

    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin

    def heading(text: str, size: int = 13) -> None:
        pdf.set_font(family, "B", size)
        pdf.multi_cell(width, 7, fit(text), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)

    def para(text: str, size: int = 9) -> None:
        pdf.set_font(family, "", size)
        pdf.multi_cell(width, 4.6, fit(text), new_x="LMARGIN", new_y="NEXT")

    heading(report_title(report), 16)
    para("Computed from the decision ledger and canon revisions.")
    pdf.ln(2)
    heading("Shares by area")
    pdf.set_font(family, "", 7.5)
    header = ["area", *(CATEGORY_LABELS[c] for c in CATEGORIES), "items", "rejections"]
    with pdf.table(col_widths=(13, 20, 20, 20, 20, 20, 10, 16), text_align="LEFT",
                   line_height=4) as table:
        for row in [header, *summary_rows(report)]:
            r = table.row()
            for cell in row:
                r.cell(fit(cell))
    pdf.ln(2)
    heading("Models")
    for a in report.areas:
        para(f"{a.area}: " + (", ".join(f"{m} ({n})" for m, n in a.models.items()) or "—"))
    for area in AREAS:
        items = [i for i in report.items if i.area == area]
        if not items:
            continue
        pdf.ln(2)
        heading(area.capitalize())
        for i in items:
            if pdf.will_page_break(22 if i.item_id in thumbs else 10):
                pdf.add_page()
            top = pdf.get_y()
            text_w = width - (20 if i.item_id in thumbs else 0)
            pdf.set_font(family, "B", 9)
            pdf.multi_cell(text_w, 4.6, fit(f"{i.label} — {CATEGORY_LABELS[i.category]}"),
                           new_x="LMARGIN", new_y="NEXT")
            pdf.set_font(family, "", 8)
            detail = "; ".join(filter(None, [f"{i.actor}, {i.action}, rev {i.rev}", _ratio(i),
                                             f"model {i.model}" if i.model else "",
                                             i.text if i.kind == "line" else ""]))
            pdf.multi_cell(text_w, 4.2, fit(detail), new_x="LMARGIN", new_y="NEXT")
            if i.item_id in thumbs:
                from PIL import Image

                img = Image.open(io.BytesIO(thumbs[i.item_id]))
                h = 18.0
                w = h * img.width / max(1, img.height)
                pdf.image(img, x=pdf.l_margin + width - w, y=top, h=h)
                pdf.set_y(max(pdf.get_y(), top + h + 1))
            pdf.ln(1)
    pdf.ln(2)
    heading("What the director steered away from")
    if not report.rejections:
        para("No proposal was rejected.")
    for r in report.rejections:
        para(f"{r.area} — {r.kind}{f' {r.target}' if r.target else ''}: {r.note or '(no note)'}")
    return bytes(pdf.output())
