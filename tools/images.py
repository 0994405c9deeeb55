"""Images the director brings in (uploads) and images Storyreel hands out (contact sheets).

An upload is untrusted: it is identified by its content, size-checked from its header before it
is decoded, fully decoded once to catch truncation, and only then written into the project.
"""
from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

from memory.errors import InputError
from memory.faults import crash_point

MAX_UPLOAD_PIXELS = 40_000_000   # a 50-megapixel photo is refused with a message, not decoded
MAX_UPLOAD_BYTES = 60 * 1024 * 1024


def import_image(src: Path, dest_dir: Path, *, size: tuple[int, int] | None = (1080, 1920)) -> Path:
    """Validate an uploaded image and store it as a PNG named by its content (never overwritten).

    With `size`, the image is fitted (cover-crop) to that size, as panels are. Raises InputError
    naming the file for a non-image, a corrupt or truncated image, or one that is too large.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    src = Path(src)
    try:
        found = src.is_file()
    except OSError as exc:   # ENAMETOOLONG and friends
        raise InputError(f"upload {src.name[:60]!r}… cannot be read ({exc.strerror}); rename it shorter and "
                         "upload it again") from exc
    if not found:
        raise InputError(f"upload {src} does not exist")
    if src.stat().st_size > MAX_UPLOAD_BYTES:
        raise InputError(f"upload {src.name} is {src.stat().st_size / 1e6:.0f} MB; the limit is "
                         f"{MAX_UPLOAD_BYTES // (1024 * 1024)} MB — export a smaller PNG or JPEG")
    try:
        with Image.open(src) as probe:
            width, height = probe.size
            if width * height > MAX_UPLOAD_PIXELS:
                raise InputError(
                    f"upload {src.name} is {width}×{height} ({width * height / 1e6:.0f} megapixels); the "
                    f"limit is {MAX_UPLOAD_PIXELS / 1e6:.0f} megapixels — scale it down (1080×1920 is enough)")
            probe.verify()
        with Image.open(src) as img:
            img.load()
            img = ImageOps.exif_transpose(img).convert("RGB")
    except InputError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise InputError(f"upload {src.name} is not an image Storyreel can read ({exc}); use PNG, JPEG or WebP") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"upload {src.name} is corrupt or truncated ({exc}); export it again") from exc
    if size is not None:
        img = ImageOps.fit(img, size, method=Image.Resampling.LANCZOS)
    dest_dir.mkdir(parents=True, exist_ok=True)
    # named by us, never by the upload: a 250-character file name must not reach the file system
    tmp = dest_dir / f".upload-{uuid.uuid4().hex[:12]}.tmp.png"
    try:
        img.save(tmp, format="PNG", compress_level=1)
        crash_point("mid-upload-import")
        digest = hashlib.sha256(tmp.read_bytes()).hexdigest()[:16]
        dest = dest_dir / f"upload-{digest}.png"
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def contact_sheet(items: list[tuple[Path | None, str, str]], out_png: Path, out_pdf: Path | None = None, *,
                  title: str = "", columns: int = 4, thumb: tuple[int, int] = (270, 480)) -> Path:
    """A grid of panel thumbnails with labels and statuses; also as a one-page PDF when asked."""
    from PIL import Image, ImageDraw

    from tools.backends._draw import load_font

    rows = max(1, -(-len(items) // columns))
    pad, label_h, title_h = 16, 54, 60 if title else 0
    width = columns * (thumb[0] + pad) + pad
    height = title_h + rows * (thumb[1] + label_h + pad) + pad
    sheet = Image.new("RGB", (width, height), (250, 248, 244))
    draw = ImageDraw.Draw(sheet)
    font, big = load_font(18, cjk=True), load_font(30, cjk=True)
    if title:
        draw.text((pad, 14), title, fill=(30, 30, 40), font=big)
    colours = {"accepted": (46, 160, 67), "stale": (220, 140, 20), "draft": (130, 130, 140)}
    for i, (path, label, status) in enumerate(items):
        x = pad + (i % columns) * (thumb[0] + pad)
        y = title_h + pad + (i // columns) * (thumb[1] + label_h + pad)
        if path is not None and Path(path).exists():
            with Image.open(path) as im:
                sheet.paste(im.convert("RGB").resize(thumb, Image.Resampling.BILINEAR), (x, y))
        else:
            draw.rectangle([x, y, x + thumb[0], y + thumb[1]], outline=(160, 160, 170), width=2)
            draw.text((x + 12, y + thumb[1] // 2), "no panel yet", fill=(120, 120, 130), font=font)
        draw.rectangle([x, y + thumb[1] + 4, x + 12, y + thumb[1] + 16], fill=colours.get(status, (0, 0, 0)))
        draw.text((x + 18, y + thumb[1] + 2), f"{status}", fill=(60, 60, 70), font=font)
        draw.text((x, y + thumb[1] + 24), label[:40], fill=(30, 30, 40), font=font)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out_png, format="PNG", compress_level=3)
    if out_pdf is not None:
        sheet.save(out_pdf, format="PDF", resolution=150.0)
    return out_png
