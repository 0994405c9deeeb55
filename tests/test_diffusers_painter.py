"""DiffusersPainter on tiny randomly initialised SD / SDXL pipelines saved to disk like real checkpoints.

The pixels are noise (random weights); what is tested is the real diffusers code path: loading from
a folder, seeding, IP-Adapter, LoRA switching, fitting, atomic writes and error messages.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from memory.errors import BackendError, InputError
from tools.backends.diffusers_painter import (
    DiffusersConfig,
    DiffusersPainter,
    build_negative,
    build_prompt,
    fit_cover,
)
from tools.backends.protocols import CharacterInShot, PanelPainter, PanelRequest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
np = pytest.importorskip("numpy")
Image = pytest.importorskip("PIL.Image")

SIZE = {"width": 64, "height": 112}   # 9:16-ish internal size; latents 32x56 with the tiny VAE
OUT = {"width": 90, "height": 160}    # fitted output size


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tiny")


@pytest.fixture(scope="module")
def sd_path(tiny_dir):
    from tools.backends.tiny_diffusers import save_tiny_sd

    return save_tiny_sd(tiny_dir / "sd")


@pytest.fixture(scope="module")
def sdxl_path(tiny_dir):
    from tools.backends.tiny_diffusers import save_tiny_sdxl

    return save_tiny_sdxl(tiny_dir / "sdxl")


def _request(shot="s1", seed=7, characters=(), **kw) -> PanelRequest:
    return PanelRequest(shot_id=shot, seed=seed, characters=characters, **OUT, **kw)


def _pixels(path: Path):
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"), dtype=np.int16)


AIKO = CharacterInShot(id="aiko", name="Aiko", look_tags=("1girl", "long black hair", "school uniform"),
                       expression="happy", speaking=True)
REN = CharacterInShot(id="ren", name="Ren", look_tags=("1boy", "short silver hair"), expression="angry")


# --------------------------------------------------------------------------- fast: prompts, config


def test_prompt_follows_animagine_tag_order_and_appends_note():
    req = PanelRequest(
        shot_id="s1", characters=(AIKO, REN), framing="close-up", angle="low angle", lighting="sunset",
        location_name="Rooftop", location_tags=("chain fence",), style_tags=("anime", "cel shading"),
        palette=("#ff0000", "teal"), note="make her look over her shoulder", negative="hat",
    )
    prompt = build_prompt(req)
    assert prompt.startswith("1girl, 1boy, long black hair, school uniform, smile, open mouth, short silver hair")
    order = [prompt.index(t) for t in ("angry", "close-up", "from below", "sunset", "rooftop", "chain fence",
                                        "cel shading", "teal", "masterpiece", "make her look")]
    assert order == sorted(order)
    assert "#ff0000" not in prompt and prompt.endswith("make her look over her shoulder")
    assert build_negative(req).endswith("blurry, hat")


def test_background_kind_has_no_humans():
    req = PanelRequest(shot_id="bg", characters=(AIKO,), kind="background", location_name="Classroom")
    prompt = build_prompt(req)
    assert prompt.startswith("no humans, scenery") and "long black hair" not in prompt


def test_custom_template_fields_and_bad_field():
    req = PanelRequest(shot_id="s", characters=(REN,), style_tags=("watercolor",), note="rain")
    cfg = DiffusersConfig(model="x", prompt_template="{style_tags}; {note}; {characters_count}")
    assert build_prompt(req, cfg.prompt_template) == "watercolor; rain; 1boy"
    with pytest.raises(InputError, match="unknown field 'camera'"):
        DiffusersConfig(model="x", prompt_template="{camera}, {style_tags}")
    with pytest.raises(InputError, match="width = 100"):
        DiffusersConfig(model="x", width=100)


def test_fit_cover_crops_to_requested_size():
    src = Image.new("RGB", (768, 1344), (0, 0, 255))
    src.paste((255, 0, 0), (0, 0, 768, 10))   # a red stripe at the top survives a 9:16 -> 9:16 fit
    out = fit_cover(src, 1080, 1920)
    assert out.size == (1080, 1920) and out.getpixel((540, 3))[0] > 200
    wide = fit_cover(Image.new("RGB", (200, 100)), 90, 160)
    assert wide.size == (90, 160)


def test_missing_checkpoint_names_the_path(tmp_path):
    missing = tmp_path / "nope" / "animagine-xl-4.0.safetensors"
    painter = DiffusersPainter(DiffusersConfig(model=str(missing)))
    assert isinstance(painter, PanelPainter)
    with pytest.raises(BackendError, match=f"checkpoint {missing} does not exist; set \\[painter\\] model"):
        painter.paint(_request(), tmp_path)
    assert painter.load_count == 0 and list(tmp_path.iterdir()) == []


def test_folder_that_is_not_a_pipeline(tmp_path):
    (tmp_path / "ckpt").mkdir()
    with pytest.raises(BackendError, match="has no model_index.json"):
        DiffusersPainter(DiffusersConfig(model=str(tmp_path / "ckpt"))).paint(_request(), tmp_path)


# --------------------------------------------------------------------------- slow: real pipelines


@pytest.mark.slow
@pytest.mark.parametrize("family", ["sd", "sdxl"])
def test_text_to_image_writes_png_of_requested_size(family, sd_path, sdxl_path, tmp_path):
    path = sd_path if family == "sd" else sdxl_path
    painter = DiffusersPainter(DiffusersConfig(model=str(path), steps=2, **SIZE))
    result = painter.paint(_request(characters=(AIKO,), location_name="rooftop"), tmp_path)
    assert painter.family == family
    assert result.image.parent == tmp_path and result.image.suffix == ".png"
    with Image.open(result.image) as img:
        assert img.format == "PNG" and img.size == (90, 160) and img.mode == "RGB"
    assert result.model == f"diffusers:{path}" and result.seed == 7
    assert result.layers == {} and result.variants == {}
    assert [p.name for p in tmp_path.iterdir()] == [result.image.name]   # no temp files left


@pytest.mark.slow
def test_seed_reproducible_and_one_load_for_many_panels(sdxl_path, tmp_path):
    painter = DiffusersPainter(DiffusersConfig(model=str(sdxl_path), steps=2, **SIZE))
    a = painter.paint(_request("a", seed=3), tmp_path / "a")
    b = painter.paint(_request("b", seed=3), tmp_path / "b")
    c = painter.paint(_request("c", seed=4), tmp_path / "c")
    for i in range(2):
        painter.paint(_request(f"more{i}", seed=10 + i), tmp_path / "more")
    assert painter.load_count == 1
    assert np.array_equal(_pixels(a.image), _pixels(b.image))
    assert np.abs(_pixels(a.image) - _pixels(c.image)).mean() > 1.0


@pytest.mark.slow
def test_ip_adapter_with_reference_images(sd_path, tmp_path):
    from tools.backends.tiny_diffusers import save_tiny_ip_adapter

    ip = save_tiny_ip_adapter(tmp_path / "ip", cross_attention_dim=32)
    red, blue = tmp_path / "red.png", tmp_path / "blue.png"
    Image.new("RGB", (64, 128), (230, 20, 20)).save(red)
    Image.new("RGB", (64, 128), (20, 20, 230)).save(blue)
    painter = DiffusersPainter(DiffusersConfig(
        model=str(sd_path), steps=2, ip_adapter=str(ip), ip_adapter_subfolder="",
        ip_adapter_weight_name="ip-adapter.safetensors", ip_adapter_scale=1.0, **SIZE,
    ))
    out = tmp_path / "out"
    plain = painter.paint(_request("plain", characters=(AIKO,)), out)
    aiko_red, aiko_blue = replace(AIKO, reference_image=red), replace(AIKO, reference_image=blue)
    with_red = painter.paint(_request("red", characters=(aiko_red,)), out)
    with_blue = painter.paint(_request("blue", characters=(aiko_blue,)), out)
    two = painter.paint(_request("two", characters=(aiko_red, replace(REN, reference_image=blue))), out)
    assert painter.load_count == 1
    assert "+ip:" in with_red.model and "red.png" in with_red.model and "+ip:" not in plain.model
    assert np.abs(_pixels(with_red.image) - _pixels(with_blue.image)).mean() > 0.1
    assert np.abs(_pixels(plain.image) - _pixels(with_red.image)).mean() > 0.1
    with Image.open(two.image) as img:
        assert img.size == (90, 160)
    # A panel without references after ones with them: scale 0 gives exactly the no-adapter image.
    again = painter.paint(_request("plain2", characters=(AIKO,)), tmp_path / "again")
    assert np.array_equal(_pixels(plain.image), _pixels(again.image))


@pytest.mark.slow
def test_lora_per_character_switches_and_restores(sd_path, tmp_path):
    from diffusers import StableDiffusionPipeline

    from tools.backends.tiny_diffusers import save_tiny_lora

    pipe = StableDiffusionPipeline.from_pretrained(sd_path, local_files_only=True)
    lora_a = save_tiny_lora(pipe, tmp_path / "lora_aiko", seed=1)
    lora_r = save_tiny_lora(pipe, tmp_path / "lora_ren", seed=2) / "pytorch_lora_weights.safetensors"
    painter = DiffusersPainter(DiffusersConfig(
        model=str(sd_path), steps=2, loras={"aiko": str(lora_a)}, **SIZE,
    ))
    # Identical prompts, so only the LoRA differs: aiko's from settings, ren's from the bible.
    look = ("1girl", "long black hair")
    aiko = CharacterInShot(id="aiko", name="Aiko", look_tags=look)
    ren = CharacterInShot(id="ren", name="Ren", look_tags=look, lora=str(lora_r))
    extra = CharacterInShot(id="extra", name="Extra", look_tags=look)
    out = tmp_path / "out"
    bare = painter.paint(_request("bare", characters=(extra,)), out)
    a1 = painter.paint(_request("a1", characters=(aiko,)), out)
    r1 = painter.paint(_request("r1", characters=(ren,)), out)
    a2 = painter.paint(_request("a2", characters=(aiko,)), out)
    bare2 = painter.paint(_request("bare2", characters=(extra,)), out)
    both = painter.paint(_request("both", characters=(aiko, ren)), out)
    assert painter.load_count == 1
    assert "+lora:aiko=" in a1.model and "+lora:ren=" in r1.model and "lora" not in bare.model
    assert "aiko=" in both.model and "ren=" in both.model
    assert np.abs(_pixels(a1.image) - _pixels(r1.image)).mean() > 1.0     # switching changes pixels
    assert np.abs(_pixels(a1.image) - _pixels(bare.image)).mean() > 1.0
    assert np.array_equal(_pixels(a1.image), _pixels(a2.image))          # switching back restores
    assert np.array_equal(_pixels(bare.image), _pixels(bare2.image))     # disabled when none present
    assert not np.array_equal(_pixels(both.image), _pixels(a1.image))


@pytest.mark.slow
@pytest.mark.parametrize("error", ["cuda_oom", "runtime_oom", "cpu_alloc"])
def test_out_of_memory_becomes_backend_error_and_writes_nothing(error, sd_path, tmp_path, monkeypatch):
    painter = DiffusersPainter(DiffusersConfig(model=str(sd_path), steps=1, **SIZE))
    painter.paint(_request("warm"), tmp_path / "warm")
    pipe = painter._pipe

    def boom(*args, **kwargs):
        if error == "cuda_oom":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        if error == "cpu_alloc":
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")
        raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB")

    monkeypatch.setattr(type(pipe), "__call__", boom)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(BackendError, match=r"out of memory painting s1 at 64x112 .*cpu_offload = true"):
        painter.paint(_request("s1"), out)
    assert list(out.iterdir()) == []


@pytest.mark.slow
def test_other_runtime_errors_are_not_disguised_as_oom(sd_path, tmp_path, monkeypatch):
    painter = DiffusersPainter(DiffusersConfig(model=str(sd_path), steps=1, **SIZE))
    painter.paint(_request("warm"), tmp_path / "warm")

    def boom(*args, **kwargs):
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(type(painter._pipe), "__call__", boom)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        painter.paint(_request("s1"), tmp_path / "out")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_fp16_paint(sdxl_path, tmp_path):
    painter = DiffusersPainter(DiffusersConfig(model=str(sdxl_path), steps=2, **SIZE))
    first = painter.paint(_request("g1", seed=5), tmp_path)
    second = painter.paint(_request("g2", seed=5), tmp_path / "2")
    assert painter._pipe.dtype == torch.float16 and painter._device == "cuda"
    assert np.array_equal(_pixels(first.image), _pixels(second.image))
