"""The studio's *Credits* tab: the authorship report on screen (markdown) plus its files to download.

No gradio here: `credits_view` returns what the tab shows, the studio mounts it (a Markdown for
``markdown``, a File list for ``files``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memory.authorship import AREAS, CATEGORIES, CATEGORY_LABELS, AuthorshipReport, authorship_report
from memory.project import Project
from ui.report import report_title, summary_rows, write_report

MAX_ROWS = 40     # items listed per table on screen; the files have them all


@dataclass(frozen=True)
class CreditsView:
    markdown: str
    files: tuple[Path, ...]        # the HTML, PDF and JSON report (empty when not written)
    report: AuthorshipReport


def credits_view(canon: Any, ledger: Any, project: Project, *, episode: int | None = None,
                 write_files: bool = True) -> CreditsView:
    """The Credits tab for the series or one episode; with ``write_files`` also the report files in
    ``PROJECT/reports/`` (for the tab's download links)."""
    report = authorship_report(canon, ledger, episode=episode)
    files = tuple(write_report(report, project).values()) if write_files else ()
    return CreditsView(markdown=credits_markdown(report), files=files, report=report)


def _esc(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").replace("*", "\\*").replace("_", "\\_")


def credits_markdown(report: AuthorshipReport) -> str:
    """Shares per area, the edited items with what changed, models, and the rejections' notes."""
    if not report.items:
        return f"### {_esc(report_title(report))}\n\nNothing has been accepted yet: no authorship to show."
    out = [f"### {_esc(report_title(report))}", ""]
    out.append("| area | " + " | ".join(CATEGORY_LABELS[c] for c in CATEGORIES) + " | items | rejections |")
    out.append("|" + "---|" * (len(CATEGORIES) + 3))
    for row in summary_rows(report):
        out.append("| " + " | ".join(_esc(cell) for cell in row) + " |")
    edited = [i for i in report.items if i.category == "edited"]
    if edited:
        out += ["", "**What you changed in the proposals** (edit ratio: 0 unchanged, 1 all new)", "",
                "| item | fields (ratio) | edit ratio |", "|---|---|---|"]
        for i in edited[:MAX_ROWS]:
            fields = ", ".join(f"{k} ({v:.2f})" for k, v in i.changed_fields.items()) or "unknown"
            ratio = "unknown" if i.edit_ratio is None else f"{i.edit_ratio:.2f}"
            out.append(f"| {_esc(i.label)} | {_esc(fields)} | {ratio} |")
        if len(edited) > MAX_ROWS:
            out.append(f"| … and {len(edited) - MAX_ROWS} more (see the report files) | | |")
    written = [i for i in report.items if i.category in ("written", "uploaded")]
    if written:
        out += ["", "**Yours from the start**: " + ", ".join(
            f"{_esc(i.label)} ({'uploaded' if i.category == 'uploaded' else 'written'})"
            for i in written[:MAX_ROWS]) + (" …" if len(written) > MAX_ROWS else "")]
    out += ["", "**Models**", ""]
    for a in report.areas:
        if a.total:
            out.append(f"- {a.area}: " + ", ".join(f"{_esc(m)} ({n})" for m, n in a.models.items()))
    out += ["", "**What you steered away from**", ""]
    if report.rejections:
        for r in report.rejections[:MAX_ROWS]:
            out.append(f"- {r.area}, {_esc(r.kind)}{f' {_esc(r.target)}' if r.target else ''}: "
                       f"{_esc(r.note) if r.note else '(no note)'}")
    else:
        out.append("- nothing was rejected")
    per_area = {a: sum(1 for i in report.items if i.area == a) for a in AREAS}
    out += ["", f"_{sum(per_area.values())} items; computed from the decision ledger and canon revisions._"]
    return "\n".join(out)
