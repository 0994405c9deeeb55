"""Optional GPU motion: animate an approved panel into a short clip with AnimateDiff.

AnimateDiff is a text-to-video motion module for SD 1.5 UNets; it has no image input of its own.
Image-to-video here uses ``AnimateDiffVideoToVideoPipeline`` on a *still video*: the panel repeated
``num_frames`` times is noised to ``strength`` and denoised with the motion module, so every frame
starts from the approved panel (composition and colours stay) and the motion module adds movement
(hair, blinking, light). Lower strength keeps closer to the panel, higher moves more.
No image-to-video model is usable on CPU; the CPU default is camera moves on the still panel.
torch/diffusers are imported on first use.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any

from memory.errors import BackendError, InputError
from tools.backends.diffusers_painter import fit_cover, is_out_of_memory

DEFAULT_MOTION_ADAPTER = "guoyww/animatediff-motion-adapter-v1-5-2"


class DiffusersMotion:
    """Animates panels with an SD 1.5 checkpoint plus an AnimateDiff MotionAdapter (loaded once)."""

    name = "animatediff"

    def __init__(
        self,
        model: str,
        motion_adapter: str | None = None,
        device: str = "auto",
        steps: int = 20,
        guidance: float = 7.5,
        strength: float = 0.6,
        width: int | None = None,
        height: int | None = None,
        negative_prompt: str = "lowres, bad anatomy, worst quality, low quality, blurry, watermark, text",
        local_files_only: bool = True,
    ) -> None:
        """``model``: SD 1.5 diffusers folder or hub id; ``motion_adapter``: folder or hub id
        (None: the AnimateDiff v1.5.2 adapter, which must be in the local Hugging Face cache
        when offline). ``width``/``height`` None: 512x896 (9:16 at SD 1.5 scale)."""
        if not 0.0 < strength <= 1.0:
            raise InputError(f"motion strength {strength} must be in (0, 1]; 0.5-0.7 keeps the panel's look")
        for label, value in (("width", width), ("height", height)):
            if value is not None and (value < 64 or value % 8):
                raise InputError(f"motion {label} = {value} must be a multiple of 8 and at least 64")
        self.model = model
        self.motion_adapter = motion_adapter or DEFAULT_MOTION_ADAPTER
        self.device = device
        self.steps = steps
        self.guidance = guidance
        self.strength = strength
        self.width = width or 512
        self.height = height or 896
        self.negative_prompt = negative_prompt
        self.local_files_only = local_files_only
        self.load_count = 0
        self._pipe: Any = None
        self._device = "cpu"
        self._lock = threading.Lock()

    def _check_local(self, value: str, what: str, setting: str) -> str:
        path = Path(value).expanduser()
        if path.exists():
            return str(path)
        if value.startswith(("/", "./", "../", "~")) or os.path.isabs(value):
            raise BackendError(f"{what} {value} does not exist; set {setting} to a diffusers folder")
        return value   # a hub id: from the local cache, or downloaded when local_files_only is off

    def _load(self) -> Any:
        model = self._check_local(self.model, "checkpoint", "[motion] model")
        adapter_source = self._check_local(self.motion_adapter, "motion adapter", "[motion] motion_adapter")
        import torch
        from diffusers import AnimateDiffVideoToVideoPipeline, MotionAdapter

        device = self.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.float16 if device.startswith("cuda") else torch.float32
        try:
            adapter = MotionAdapter.from_pretrained(adapter_source, local_files_only=self.local_files_only)
            pipe = AnimateDiffVideoToVideoPipeline.from_pretrained(
                model, motion_adapter=adapter, local_files_only=self.local_files_only,
            )
        except (OSError, ValueError) as exc:
            raise BackendError(
                f"could not load AnimateDiff from {self.model} + {self.motion_adapter}: {exc}; the model must be "
                "an SD 1.5 checkpoint folder and the adapter an AnimateDiff MotionAdapter"
            ) from exc
        pipe.set_progress_bar_config(disable=True)
        pipe.to(device=device, dtype=dtype)
        self._device = device
        return pipe

    def _ensure_pipe(self) -> Any:
        if self._pipe is None:
            try:
                self._pipe = self._load()
            except BackendError:
                raise
            except Exception as exc:
                if is_out_of_memory(exc):
                    raise BackendError(self._oom_message(0, "loading AnimateDiff")) from exc
                raise
            self.load_count += 1
        return self._pipe

    def _oom_message(self, num_frames: int, what: str) -> str:
        return (
            f"out of memory {what} ({num_frames} frames at {self.width}x{self.height} on {self._device}); "
            "use fewer frames or a smaller [motion] width/height"
        )

    def animate(
        self, panel: Path, prompt: str, num_frames: int, fps: int, seed: int, out_dir: Path
    ) -> list[Path]:
        """Write ``num_frames`` PNG frames (fitted to the panel's size) and a clip.json; return the frames.

        The frames land in ``out_dir/<panel>-<seed>-<hash>/`` all at once (written to a temporary
        folder, then renamed), so a failure never leaves half a clip.
        """
        from PIL import Image

        if num_frames < 2 or fps < 1:
            raise InputError(f"a clip needs at least 2 frames and 1 fps, not {num_frames} frames at {fps} fps")
        panel = Path(panel)
        try:
            with Image.open(panel) as handle:
                still = handle.convert("RGB")
        except (OSError, ValueError) as exc:
            raise InputError(f"panel {panel} cannot be read ({exc}); draw or accept the panel first") from exc
        with self._lock:
            pipe = self._ensure_pipe()
            import torch

            source = fit_cover(still, self.width, self.height)
            generator = torch.Generator(device=self._device).manual_seed(seed)
            try:
                with torch.inference_mode():
                    frames = pipe(
                        video=[source] * num_frames, prompt=prompt, negative_prompt=self.negative_prompt,
                        width=self.width, height=self.height, num_inference_steps=self.steps,
                        guidance_scale=self.guidance, strength=self.strength, generator=generator,
                        output_type="pil",
                    ).frames[0]
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                raise BackendError(self._oom_message(num_frames, f"animating {panel.name}")) from exc
        identity = "\n".join((self.model, self.motion_adapter, prompt, str(num_frames), str(self.steps),
                              str(self.strength), str(self.guidance), f"{self.width}x{self.height}",
                              hashlib.sha256(panel.read_bytes()).hexdigest()))
        clip_dir = Path(out_dir) / f"{panel.stem}-{seed}-{hashlib.sha256(identity.encode()).hexdigest()[:10]}"
        tmp = clip_dir.with_name(f".{clip_dir.name}.{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            names = []
            for i, frame in enumerate(frames):
                name = f"frame_{i:04d}.png"
                fit_cover(frame, still.width, still.height).save(tmp / name, format="PNG")
                names.append(name)
            (tmp / "clip.json").write_text(json.dumps({
                "panel": str(panel), "frames": names, "fps": fps, "seed": seed, "prompt": prompt,
                "model": f"animatediff:{self.model}+{self.motion_adapter}", "strength": self.strength,
            }, indent=2))
            shutil.rmtree(clip_dir, ignore_errors=True)
            os.replace(tmp, clip_dir)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return [clip_dir / name for name in names]
