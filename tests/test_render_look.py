"""The finished look (issue 8.13): the final MP4 carries no storyboard guides, and each line is shown
once, as a burned subtitle or as the panel's speech bubble, never both; SRT/VTT list it once."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from agent.cut import shot_picture
from tools.backends.animatic import AnimaticPainter
from tools.backends.protocols import CharacterInShot, PanelRequest
from tools.render.spec import CaptionCue, EpisodeSpec, ShotSpec

W, H, FPS = 270, 480, 24
LINE = "We can't go back now."
AIKO = CharacterInShot(id="aiko", name="Aiko", look_tags=("long silver hair", "white kimono"), speaking=True)


@pytest.fixture(scope="module")
def panel(tmp_path_factory):
    request = PanelRequest(shot_id="s1", location_name="shrine at dusk", characters=(AIKO,), framing="wide",
                           camera_move="push-in", line_text=f"Aiko: {LINE}", width=W, height=H)
    return AnimaticPainter().paint(request, tmp_path_factory.mktemp("panel"))


def _rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.int16)


def _alpha(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.getchannel("A")) > 0


def _render(tmp: Path, panel, text: str, *, guides: bool, captions: str):
    from tools.render import render_episode

    picture, layers, burn = shot_picture(panel.image, dict(panel.layers), dict(panel.variants), [(text, "Aiko")],
                                         guides=guides, captions=captions)
    shot = ShotSpec("s1", picture, 1.0, "static", layers=layers, variants=dict(panel.variants),
                    captions=(CaptionCue(text, 0.0, 1.0, "Aiko"),), burn_captions=burn, seed=3)
    result = render_episode(EpisodeSpec((shot,), fps=FPS, width=W, height=H), tmp / "out", tmp / "cache")
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(result.mp4), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, H, W, 3)
    return shot, result, frames[len(frames) // 2].astype(np.int16)


def _caption_band() -> np.ndarray:
    from tools.render.captions import CAPTION_BOTTOM, SAFE_TOP

    band = np.zeros((H, W), bool)
    band[int(H * SAFE_TOP * 2.5):int(H * CAPTION_BOTTOM) + 2] = True    # where a burned caption may sit
    return band


def _subtitle_box(text: str) -> np.ndarray:
    from tools.render.captions import CaptionTrack

    patch = CaptionTrack((CaptionCue(text, 0.0, 1.0),), W, H, None, "en").patches[0]
    box = np.zeros((H, W), bool)
    box[patch.y:patch.y + patch.size[1], patch.x:patch.x + patch.size[0]] = True
    return box


def _diff(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    return float(np.abs(a - b)[mask].mean())


def test_the_painter_hands_over_a_clean_look_and_separate_guides_and_bubble(panel):
    assert {"guides", "bubble", "overlay"} <= set(panel.layers) and "clean" in panel.variants
    clean, storyboard = _rgb(panel.variants["clean"]), _rgb(panel.image)
    guides = _alpha(panel.layers["guides"])
    assert guides[: int(H * 0.2)].any()                                # the shot-id strip at the top
    assert _diff(clean, storyboard, guides) > 20                       # the storyboard has the guides...
    with Image.open(panel.layers["bubble"]) as bubble:
        assert bubble.text["storyreel:bubble"] == LINE                 # ...and the bubble says the line


def test_the_final_cut_has_no_guides_and_the_line_once_as_a_subtitle(panel, tmp_path):
    shot, result, frame = _render(tmp_path, panel, LINE, guides=False, captions="subtitle")
    assert "guides" not in shot.layers and "bubble" not in shot.layers and "overlay" not in shot.layers
    assert shot.burn_captions and shot.panel == panel.variants["clean"]
    clean, storyboard = _rgb(panel.variants["clean"]), _rgb(panel.image)
    guides = _alpha(panel.layers["guides"]) & ~_caption_band()
    bubble = _alpha(panel.layers["bubble"]) & ~_caption_band() & ~guides
    assert guides.sum() > 500 and bubble.sum() > 500
    # in the guides' and the bubble's places the frame is the clean panel, not the storyboard's
    assert _diff(frame, clean, guides) < 8 and _diff(frame, storyboard, guides) > 20
    assert _diff(frame, clean, bubble) < 8 and _diff(frame, storyboard, bubble) > 20
    # the subtitle is burned in where the caption track puts it ...
    assert _diff(frame, clean, _subtitle_box(LINE)) > 15
    # ... and the line is in the SRT exactly once
    srt = result.srt.read_text()
    assert srt.count(LINE) == 1 and srt.count("-->") == 1


def test_bubble_mode_shows_the_panels_bubble_and_burns_no_subtitle(panel, tmp_path):
    shot, result, frame = _render(tmp_path, panel, LINE, guides=False, captions="bubble")
    assert "bubble" in shot.layers and "guides" not in shot.layers and not shot.burn_captions
    clean, storyboard = _rgb(panel.variants["clean"]), _rgb(panel.image)
    guides = _alpha(panel.layers["guides"])
    bubble = _alpha(panel.layers["bubble"]) & ~guides
    assert _diff(frame, storyboard, bubble) < 8 and _diff(frame, clean, bubble) > 20  # the bubble is there
    assert _diff(frame, clean, guides & ~_alpha(panel.layers["bubble"])) < 8          # the guides are not
    rest = _subtitle_box(LINE) & ~_alpha(panel.layers["bubble"]) & ~guides
    assert rest.sum() > 300 and _diff(frame, clean, rest) < 6                         # no subtitle burned
    assert result.srt.read_text().count(LINE) == 1                   # the sidecar still lists the line once


def test_a_bubble_that_disagrees_with_the_line_is_replaced_by_the_subtitle(panel, tmp_path):
    dubbed = "もう戻れない。"
    _, layers, burn = shot_picture(panel.image, dict(panel.layers), dict(panel.variants),
                                   [(dubbed, "Aiko")], guides=False, captions="bubble")
    assert burn and "bubble" not in layers
    two_lines = shot_picture(panel.image, dict(panel.layers), dict(panel.variants),
                             [(LINE, "Aiko"), ("And never again.", "Aiko")], guides=False, captions="bubble")
    assert two_lines[2] and "bubble" not in two_lines[1]            # the bubble holds one line only


def test_guides_can_be_kept_on_request(panel, tmp_path):
    shot, _, frame = _render(tmp_path, panel, LINE, guides=True, captions="subtitle")
    assert "guides" in shot.layers and "bubble" not in shot.layers
    guides = _alpha(panel.layers["guides"]) & ~_caption_band() & ~_alpha(panel.layers["bubble"])
    assert _diff(frame, _rgb(panel.image), guides) < 12 and _diff(frame, _rgb(panel.variants["clean"]), guides) > 20


def test_render_options_come_from_project_toml(tmp_path):
    from agent.cut import RenderOptions, render_options
    from memory.errors import InputError

    (tmp_path / "project.toml").write_text('schema_version = 1\nname = "x"\n')
    assert render_options(tmp_path) == RenderOptions(guides=False, captions="subtitle")
    (tmp_path / "project.toml").write_text('schema_version = 1\n[render]\nguides = true\ncaptions = "bubble"\n')
    assert render_options(tmp_path) == RenderOptions(guides=True, captions="bubble")
    (tmp_path / "project.toml").write_text('[render]\ncaptions = "both"\n')
    with pytest.raises(InputError, match="captions = 'both'.*subtitle"):
        render_options(tmp_path)
    (tmp_path / "project.toml").write_text('[render]\nguides = "yes"\n')
    with pytest.raises(InputError, match="guides = 'yes'"):
        render_options(tmp_path)
