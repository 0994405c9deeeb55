"""The offline animatic painter: deterministic, consistent characters, exact layers, safe area."""
from __future__ import annotations

import hashlib
import io
import struct
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from memory.errors import InputError
from tools.backends import _draw
from tools.backends._draw import encode_png, find_font, parse_color, write_layer_pngs
from tools.backends.animatic import (
    MODEL,
    SAFE_BOTTOM,
    SAFE_SIDE,
    SAFE_TOP,
    AnimaticPainter,
    canonical_expression,
    character_look,
    plan_figures,
    safe_rect,
)
from tools.backends.protocols import CharacterInShot, PanelPainter, PanelRequest

AIKO = CharacterInShot(
    id="aiko", name="Aiko", look_tags=("long silver hair", "blue eyes", "red scarf", "navy school uniform", "skirt"),
    expression="determined", speaking=True,
)
REN = CharacterInShot(id="ren", name="Ren", look_tags=("short black hair", "white shirt", "glasses"),
                      expression="surprised")
BASE = PanelRequest(
    shot_id="S01-001", location_name="rainy shrine at night", location_tags=("rain", "shrine", "night"),
    characters=(AIKO, REN), framing="medium", camera_move="push-in",
    line_text="We can't go back now. The gate only opens once.",
)


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGBA" if image.mode == "RGBA" else "RGB"))


def paint(tmp_path: Path, request: PanelRequest, sub: str = "out"):
    return AnimaticPainter().paint(request, tmp_path / sub)


@pytest.fixture(scope="module")
def medium(tmp_path_factory: pytest.TempPathFactory):
    return AnimaticPainter().paint(BASE, tmp_path_factory.mktemp("medium"))


def test_satisfies_protocol_and_names_outputs_by_shot_and_seed(medium) -> None:
    assert isinstance(AnimaticPainter(), PanelPainter)
    assert medium.model == MODEL and medium.seed == 0
    assert medium.image.name == "S01-001-s0.png"
    assert set(medium.layers) == {"backdrop", "char:aiko", "char:ren", "guides", "bubble", "overlay"}
    from tools.lipsync import MOUTH_VARIANTS

    mouths = {f"char:{c}:{m}" for c in ("aiko", "ren") for m in MOUTH_VARIANTS}   # one per mouth shape
    assert set(medium.variants) == {"char:aiko:eyes_closed", "char:aiko:mouth_open",
                                    "char:ren:eyes_closed", "char:ren:mouth_open", "clean"} | mouths
    assert all(path.is_file() and path.name.startswith("S01-001-s0.") for path in medium.layers.values())


def test_panel_is_a_structured_1080x1920_rgb_image(medium) -> None:
    with Image.open(medium.image) as image:
        assert image.size == (1080, 1920) and image.mode == "RGB"
        array = np.asarray(image, dtype=np.float32)
    assert array.std() > 25, "the panel must show a scene, not a flat colour"
    # structure in both directions: rows and columns are not all alike
    assert array.mean(axis=1).std() > 5 and array.mean(axis=0).std() > 5


def test_same_request_gives_identical_pixels(tmp_path: Path, medium) -> None:
    again = paint(tmp_path, BASE)
    for first, second in [(medium.image, again.image), *zip(medium.layers.values(), again.layers.values()),
                          *zip(medium.variants.values(), again.variants.values())]:
        assert hashlib.sha256(first.read_bytes()).digest() == hashlib.sha256(second.read_bytes()).digest()


def test_another_seed_gives_a_different_but_valid_candidate(tmp_path: Path, medium) -> None:
    other = paint(tmp_path, replace(BASE, seed=7))
    assert other.image.name == "S01-001-s7.png"
    first, second = pixels(medium.image), pixels(other.image)
    assert first.shape == second.shape == (1920, 1080, 3)
    assert np.abs(first.astype(int) - second.astype(int)).max() > 0
    assert second.astype(np.float32).std() > 25
    # the seed moves rain streaks; the characters stay exactly the same
    assert np.array_equal(pixels(medium.layers["char:aiko"]), pixels(other.layers["char:aiko"]))


@pytest.mark.parametrize("location", ["meadow", "quiet bedroom"])
def test_seed_varies_details_even_in_a_plain_place(tmp_path: Path, location: str) -> None:
    request = replace(BASE, location_name=location, location_tags=(), characters=(), line_text="", framing="wide")
    first = pixels(paint(tmp_path, request, "a").layers["backdrop"])
    second = pixels(paint(tmp_path, replace(request, seed=1), "b").layers["backdrop"])
    changed = np.any(first != second, axis=2).mean()
    assert 0.001 < changed < 0.5, "a new seed changes details, not the whole place"


def _color_share(layer: np.ndarray, color: tuple[int, int, int]) -> float:
    opaque = layer[layer[..., 3] == 255][:, :3]
    return float(np.all(opaque == np.array(color), axis=1).mean())


def test_character_colours_hold_across_framings_expressions_and_company(tmp_path: Path) -> None:
    look = character_look(AIKO)
    assert look.hair == parse_color("silver") and look.accent == parse_color("red")
    assert look.outfit == parse_color("navy") and look.eyes == parse_color("blue")
    alone_medium = replace(BASE, characters=(AIKO,), line_text="")
    close_up = replace(alone_medium, framing="close-up",
                       characters=(replace(AIKO, expression="crying", speaking=False),))
    with_company = replace(BASE, characters=(REN, replace(AIKO, expression="happy")))
    for index, request in enumerate((alone_medium, close_up, with_company)):
        layer = pixels(paint(tmp_path, request, f"r{index}").layers["char:aiko"])
        assert _color_share(layer, look.hair) > 0.05, request.framing
        assert _color_share(layer, look.outfit) > 0.05, request.framing
        assert _color_share(layer, look.skin) > 0.03, request.framing


def test_characters_with_different_ids_look_different() -> None:
    plain = [character_look(CharacterInShot(id=f"extra{i}", name="X")) for i in range(6)]
    assert len({(look.hair, look.outfit, look.eyes) for look in plain}) >= 5


def test_layers_recomposite_to_the_panel_exactly(medium) -> None:
    composite = Image.open(medium.layers["backdrop"]).convert("RGBA")
    for key in ("char:aiko", "char:ren", "overlay"):
        with Image.open(medium.layers[key]) as layer:
            assert layer.mode == "RGBA" and layer.size == (1080, 1920)
            composite = Image.alpha_composite(composite, layer)
    difference = np.abs(np.asarray(composite.convert("RGB"), dtype=int) - pixels(medium.image).astype(int))
    assert difference.max() == 0


def test_character_layers_are_transparent_around_the_figure(medium) -> None:
    alpha = pixels(medium.layers["char:aiko"])[..., 3]
    assert alpha[0, 0] == 0 and alpha[-1, -1] == 0
    assert 0.02 < (alpha > 0).mean() < 0.5


def test_variants_change_only_the_face(medium) -> None:
    placements = {p.character_id: p for p in plan_figures(BASE)}
    for character in ("aiko", "ren"):
        base = pixels(medium.layers[f"char:{character}"]).astype(int)
        x0, y0, x1, y1 = placements[character].face
        for variant in ("eyes_closed", "mouth_open"):
            changed = np.argwhere(np.any(pixels(medium.variants[f"char:{character}:{variant}"]) != base, axis=2))
            assert len(changed), f"{character} {variant} must differ from the base layer"
            (top, left), (bottom, right) = changed.min(axis=0), changed.max(axis=0)
            assert x0 <= left and right < x1 and y0 <= top and bottom < y1
    eyes = pixels(medium.variants["char:aiko:eyes_closed"])
    mouth = pixels(medium.variants["char:aiko:mouth_open"])
    placement = placements["aiko"]
    eye_row = round(placement.head_top + 0.6 * placement.unit)
    mouth_row = round(placement.head_top + 0.86 * placement.unit)
    assert not np.array_equal(eyes[eye_row - 5:eye_row + 5], mouth[eye_row - 5:eye_row + 5])
    assert not np.array_equal(eyes[mouth_row - 5:mouth_row + 5], mouth[mouth_row - 5:mouth_row + 5])


def _inside(box: tuple[int, int, int, int], bounds: tuple[int, int, int, int]) -> bool:
    return box[0] >= bounds[0] and box[1] >= bounds[1] and box[2] <= bounds[2] and box[3] <= bounds[3]


@pytest.mark.parametrize("framing", ["close-up", "extreme close-up", "medium", "wide"])
def test_faces_and_text_stay_inside_the_safe_area(tmp_path: Path, framing: str) -> None:
    assert (SAFE_TOP, SAFE_BOTTOM, SAFE_SIDE) == (0.12, 0.20, 0.06)
    result = paint(tmp_path, replace(BASE, framing=framing))
    bounds = safe_rect(1080, 1920)
    assert bounds == (65, 230, 1015, 1536)
    for key in ("char:aiko", "char:ren", "overlay"):
        box = Image.open(result.layers[key]).getchannel("A").getbbox()
        if key == "char:ren" and framing == "extreme close-up":
            assert box is None, "an extreme close-up shows only the speaker"
            continue
        assert box is not None and _inside(box, bounds), (key, box)


def test_extreme_close_up_fills_the_frame_with_the_speakers_face(tmp_path: Path) -> None:
    request = replace(BASE, framing="extreme close-up", characters=(REN, AIKO))
    placement = next(p for p in plan_figures(request) if p.visible)
    assert placement.character_id == "aiko"
    face_width = placement.face[2] - placement.face[0]
    assert face_width > 0.6 * 1080


def test_framing_sizes_figures(tmp_path: Path) -> None:
    units = {f: plan_figures(replace(BASE, framing=f))[0].unit
             for f in ("establishing", "wide", "medium", "close-up", "extreme close-up")}
    assert units["establishing"] < units["wide"] < units["medium"] < units["close-up"] < units["extreme close-up"]
    assert plan_figures(replace(BASE, framing="close-up"))[0].center_x < plan_figures(replace(BASE, framing="close-up"))[1].center_x


def test_name_labels_are_drawn_and_grow_with_the_name(tmp_path: Path) -> None:
    def label_ink(name: str) -> int:
        request = replace(BASE, characters=(replace(REN, name=name),), line_text="", camera_move="static")
        overlay = pixels(paint(tmp_path, request, name).layers["overlay"])
        bottom = safe_rect(1080, 1920)[3]
        band = overlay[bottom - 120:bottom]             # name tags sit at the bottom of the safe area
        light = np.all(band[..., :3] > 200, axis=2) & (band[..., 3] > 200)
        dark = np.all(band[..., :3] < 60, axis=2) & (band[..., 3] > 150)
        assert dark.sum() > 500, "a name tag needs its dark pill"
        return int(light.sum())

    assert label_ink("Ren") > 150
    assert label_ink("Ren Takahashi") > 2 * label_ink("Ren")


def test_speaker_gets_a_bubble_with_the_line(tmp_path: Path) -> None:
    silent = pixels(paint(tmp_path, replace(BASE, line_text=""), "silent").layers["overlay"])
    talking = pixels(paint(tmp_path, BASE, "talking").layers["overlay"])
    bubble = np.all(talking[..., :3] >= 250, axis=2) & (talking[..., 3] > 200)
    assert bubble.sum() - (np.all(silent[..., :3] >= 250, axis=2) & (silent[..., 3] > 200)).sum() > 20_000


def test_japanese_names_and_lines_render(tmp_path: Path) -> None:
    if find_font(cjk=True) is None:
        pytest.skip("no CJK font installed (Debian: fonts-noto-cjk)")
    def overlay(name: str) -> np.ndarray:
        character = CharacterInShot(id="aiko", name=name, speaking=True)
        request = replace(BASE, characters=(character,), line_text="行こう、今すぐ！", framing="close-up")
        return pixels(paint(tmp_path, request, name).layers["overlay"])

    first, swapped = overlay("愛子"), overlay("子愛")
    # Missing glyphs would draw identical boxes for both orders.
    assert not np.array_equal(first, swapped)


def test_character_sheet(tmp_path: Path) -> None:
    result = paint(tmp_path, PanelRequest(shot_id="aiko-ref", characters=(AIKO,), kind="character_sheet"))
    image = pixels(result.image)
    assert image.shape == (1920, 1080, 3)
    look = character_look(AIKO)
    for color in (look.hair, look.outfit, look.accent):
        assert np.all(image == np.array(color), axis=2).sum() > 2000
    with pytest.raises(InputError, match="exactly one character"):
        paint(tmp_path, PanelRequest(shot_id="two", characters=(AIKO, REN), kind="character_sheet"))


def test_background_kind_has_no_characters(tmp_path: Path) -> None:
    request = PanelRequest(shot_id="loc-city", location_name="city street at night", kind="background")
    result = paint(tmp_path, request)
    assert set(result.layers) == {"backdrop", "overlay"} and not result.variants
    image = pixels(result.image).astype(np.float32)
    assert image.shape == (1920, 1080, 3) and image.std() > 15
    assert Image.open(result.layers["overlay"]).getchannel("A").getbbox() is not None  # the location label


def test_accepted_background_image_is_used(tmp_path: Path) -> None:
    source = tmp_path / "bg.png"
    Image.new("RGB", (300, 200), (10, 200, 30)).save(source)
    result = paint(tmp_path, replace(BASE, background_image=source))
    backdrop = pixels(result.layers["backdrop"])
    assert backdrop.shape == (1920, 1080, 3) and np.all(backdrop == (10, 200, 30))
    with pytest.raises(InputError, match="missing.png"):
        paint(tmp_path, replace(BASE, background_image=tmp_path / "missing.png"))


def test_palette_and_lighting_colour_the_backdrop(tmp_path: Path) -> None:
    day = replace(BASE, location_name="park", location_tags=(), palette=("#88ccff", "#ffffff", "#55aa55"),
                  characters=(), line_text="")
    night = replace(day, lighting="night")
    day_px, night_px = pixels(paint(tmp_path, day, "day").image), pixels(paint(tmp_path, night, "night").image)
    assert day_px[300:600].mean() > night_px[300:600].mean() + 60
    # the sky at the top of the frame is the palette's first colour
    assert np.abs(day_px[20, 540].astype(int) - np.array(parse_color("#88ccff"))).max() < 30


def test_bad_inputs_name_the_value(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="'dutch tilt'"):
        paint(tmp_path, replace(BASE, framing="dutch tilt"))
    with pytest.raises(InputError, match="'spin'"):
        paint(tmp_path, replace(BASE, camera_move="spin"))
    with pytest.raises(InputError, match="'not-a-colour'"):
        paint(tmp_path, replace(BASE, palette=("not-a-colour",)))
    with pytest.raises(InputError, match="'poster'"):
        paint(tmp_path, replace(BASE, kind="poster"))
    with pytest.raises(InputError, match="width"):
        paint(tmp_path, replace(BASE, width=0))


def test_aliases_and_expressions_are_understood(tmp_path: Path) -> None:
    assert canonical_expression("a bit worried") == "scared"
    assert canonical_expression("smug grin") == "smirk"
    assert canonical_expression("blank") == "neutral"
    result = paint(tmp_path, replace(BASE, framing="Close Up", camera_move="zoom in", width=540, height=960))
    assert Image.open(result.image).size == (540, 960)


def test_camera_move_guides_differ(tmp_path: Path) -> None:
    overlays = {move: pixels(paint(tmp_path, replace(BASE, camera_move=move, line_text=""), move).layers["overlay"])
                for move in ("static", "push-in", "pan", "shake")}
    static_ink = (overlays["static"][..., 3] > 0).sum()
    for move in ("push-in", "pan", "shake"):
        assert (overlays[move][..., 3] > 0).sum() > static_ink + 1000, move


def test_png_writer_round_trips(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    for shape in [(300, 200, 3), (300, 200, 4), (5, 3, 4)]:
        array = np.zeros(shape, dtype=np.uint8)
        array[shape[0] // 3:shape[0] // 2] = rng.integers(0, 255, (shape[0] // 2 - shape[0] // 3, *shape[1:]))
        array[-1] = 7
        with Image.open(io.BytesIO(encode_png(array))) as decoded:
            assert np.array_equal(np.asarray(decoded), array)
    base = rng.integers(0, 255, (40, 30, 4), dtype=np.uint8)
    variant = base.copy()
    variant[10:20] = 0
    targets = [(tmp_path / "a.png", Image.fromarray(base)), (tmp_path / "b.png", Image.fromarray(variant))]
    write_layer_pngs(targets, (50, 60), (200, 120), varying_rows=(10, 20))
    for path, array in ((tmp_path / "a.png", base), (tmp_path / "b.png", variant)):
        full = np.zeros((120, 200, 4), dtype=np.uint8)
        full[60:100, 50:80] = array
        assert np.array_equal(pixels(path), full)


def _idat_stream(png: bytes) -> bytes:
    """Concatenated IDAT data, checking every chunk's CRC on the way."""
    offset, stream = 8, b""
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset:offset + 4])
        kind, data = png[offset + 4:offset + 8], png[offset + 8:offset + 8 + length]
        assert struct.unpack(">I", png[offset + 8 + length:offset + 12 + length])[0] == zlib.crc32(kind + data)
        if kind == b"IDAT":
            stream += data
        offset += 12 + length
    return stream


@pytest.mark.parametrize("deflate", ["fast", "zlib"])
def test_png_streams_are_strictly_valid(monkeypatch: pytest.MonkeyPatch, deflate: str) -> None:
    if deflate == "zlib":  # the fallback when the optional isal package is absent
        monkeypatch.setattr(_draw, "_fast_zlib", zlib)
    array = np.zeros((600, 90, 4), dtype=np.uint8)
    array[100:140, 10:50] = (200, 30, 40, 255)
    array[400:402] = 9
    png = encode_png(array)
    raw = zlib.decompress(_idat_stream(png))  # raises on a wrong adler32 trailer
    assert len(raw) == 600 * (90 * 4 + 1)
    with Image.open(io.BytesIO(png)) as decoded:
        assert np.array_equal(np.asarray(decoded), array)


def test_pose_moves_an_arm_but_keeps_the_colours(tmp_path: Path) -> None:
    down = replace(BASE, characters=(AIKO,), framing="wide", line_text="")
    waving = replace(down, characters=(replace(AIKO, pose="waving hello"),))
    placement = plan_figures(down)[0]
    head_row = round(placement.head_top + 0.3 * placement.unit)
    right_of_head = round(placement.center_x + 0.9 * placement.unit * character_look(AIKO).build)
    layers = [pixels(paint(tmp_path, request, name).layers["char:aiko"]) for name, request in
              (("down", down), ("waving", waving))]
    assert layers[0][head_row, right_of_head, 3] == 0 and layers[1][head_row, right_of_head, 3] == 255
    look = character_look(AIKO)
    for layer in layers:  # a full figure: hair and uniform both clearly present, in the same colours
        assert _color_share(layer, look.hair) > 0.02 and _color_share(layer, look.outfit) > 0.1


@pytest.mark.parametrize("text", ["We can't go back now.", "行こう、今すぐ！", "", "Aiko: \"quoted\" — and more"])
def test_png_text_notes_round_trip_without_decoding(tmp_path: Path, text: str) -> None:
    from tools.backends._draw import png_text, write_png

    image = Image.new("RGBA", (30, 20), (10, 20, 30, 255))
    path = write_png(tmp_path / "note.png", image, text={"storyreel:bubble": text})
    assert png_text(path) == {"storyreel:bubble": text}
    with Image.open(path) as decoded:                   # still a strictly valid PNG, pixels intact
        assert decoded.info["storyreel:bubble"] == text
        assert np.array_equal(np.asarray(decoded), np.asarray(image))
    assert png_text(write_png(tmp_path / "plain.png", image)) == {}
    assert png_text(tmp_path / "missing.png") == {}


def test_the_bubble_says_the_line_without_the_name_its_tail_points_at(tmp_path: Path) -> None:
    from tools.backends._draw import png_text

    request = replace(BASE, line_text="Aiko: We can't go back now.")
    result = paint(tmp_path, request)
    assert png_text(result.layers["bubble"]) == {"storyreel:bubble": "We can't go back now."}
    nobody = paint(tmp_path, replace(request, characters=(REN,)), "narration")   # Aiko is not drawn
    assert png_text(nobody.layers["bubble"]) == {"storyreel:bubble": "Aiko: We can't go back now."}
    silent = paint(tmp_path, replace(request, line_text=""), "silent")
    assert "bubble" not in silent.layers and "guides" in silent.layers
