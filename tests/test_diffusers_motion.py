"""DiffusersMotion (AnimateDiff video-to-video on a still panel) with a tiny SD + MotionAdapter on CPU."""
from __future__ import annotations

import json

import pytest

from memory.errors import BackendError, InputError
from tools.backends.diffusers_motion import DiffusersMotion

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
np = pytest.importorskip("numpy")
Image = pytest.importorskip("PIL.Image")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from tools.backends.tiny_diffusers import save_tiny_motion_adapter, save_tiny_sd

    root = tmp_path_factory.mktemp("motion")
    return save_tiny_sd(root / "sd"), save_tiny_motion_adapter(root / "adapter")


@pytest.fixture
def panel(tmp_path):
    path = tmp_path / "shot1.png"
    img = Image.new("RGB", (90, 160), (40, 60, 200))
    img.paste((230, 200, 40), (20, 40, 70, 120))
    img.save(path)
    return path


def test_bad_arguments_fail_before_loading(tmp_path, panel):
    with pytest.raises(InputError, match="strength 1.5"):
        DiffusersMotion("x", strength=1.5)
    motion = DiffusersMotion(str(tmp_path / "missing-sd"), str(tmp_path / "adapter"))
    with pytest.raises(InputError, match="at least 2 frames"):
        motion.animate(panel, "wind", num_frames=1, fps=8, seed=0, out_dir=tmp_path)
    with pytest.raises(InputError, match="cannot be read"):
        motion.animate(tmp_path / "nope.png", "wind", num_frames=8, fps=8, seed=0, out_dir=tmp_path)
    with pytest.raises(BackendError, match="missing-sd does not exist"):
        motion.animate(panel, "wind", num_frames=8, fps=8, seed=0, out_dir=tmp_path / "out")
    assert motion.load_count == 0 and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_animates_a_panel_into_frames_on_cpu(tiny, panel, tmp_path, monkeypatch):
    torch.set_num_threads(1)
    sd, adapter = tiny
    motion = DiffusersMotion(str(sd), str(adapter), steps=4, strength=0.6, width=64, height=64)
    out = tmp_path / "clips"
    frames = motion.animate(panel, "1girl, wind, hair blowing", num_frames=8, fps=8, seed=3, out_dir=out)
    assert len(frames) == 8 and all(p.suffix == ".png" for p in frames)
    pixels = []
    for path in frames:
        with Image.open(path) as img:
            assert img.size == (90, 160)       # fitted back to the panel's size
            pixels.append(np.asarray(img.convert("RGB"), dtype=np.int16))
    assert any(np.abs(pixels[0] - p).mean() > 0.5 for p in pixels[1:])   # frames differ: motion
    meta = json.loads((frames[0].parent / "clip.json").read_text())
    assert meta["fps"] == 8 and meta["frames"][0] == "frame_0000.png" and meta["seed"] == 3
    assert [p.name for p in out.iterdir()] == [frames[0].parent.name]   # no temp folder left
    again = motion.animate(panel, "1girl, wind, hair blowing", num_frames=8, fps=8, seed=3, out_dir=tmp_path / "b")
    with Image.open(again[5]) as a, Image.open(frames[5]) as b:
        assert np.array_equal(np.asarray(a), np.asarray(b))           # seeded
    assert motion.load_count == 1

    def oom(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 4.00 GiB")

    monkeypatch.setattr(type(motion._pipe), "__call__", oom)
    with pytest.raises(BackendError, match="out of memory animating shot1.png .8 frames at 64x64"):
        motion.animate(panel, "wind", num_frames=8, fps=8, seed=3, out_dir=tmp_path / "oom")
    assert not (tmp_path / "oom").exists()
