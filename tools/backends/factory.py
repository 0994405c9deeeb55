"""Build the backends a project's settings name. Swapping a backend is one class + one name here.

project.toml:
    [painter]
    backend = "animatic"        # animatic (offline default) | diffusers | openai
    candidates = 2              # panel candidates per proposal
    model = "/models/animagine-xl-4.0"   # diffusers: folder, .safetensors or hub id; openai: model name
    # diffusers options: family, device, dtype, cpu_offload, vae_tiling, steps, guidance, width, height,
    # ip_adapter, ip_adapter_scale, lora_scale, prompt_template, negative_prompt, local_files_only
    # openai options: base_url, api_key_env, size, timeout
    [painter.loras]             # character id -> LoRA file
    character-aiko = "/models/aiko-lora.safetensors"
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any

from memory.errors import InputError
from tools.backends.protocols import PanelPainter

PAINTERS = ("animatic", "diffusers", "openai")


def painter_settings(section: dict[str, Any] | None) -> tuple[str, int, dict[str, Any]]:
    section = dict(section or {})
    backend = str(section.pop("backend", "animatic"))
    if backend not in PAINTERS:
        raise InputError(f"[painter] backend = {backend!r} is unknown; use one of {', '.join(PAINTERS)}")
    candidates = section.pop("candidates", 2)
    if not isinstance(candidates, int) or not 1 <= candidates <= 8:
        raise InputError(f"[painter] candidates = {candidates!r}; use a whole number from 1 to 8")
    return backend, candidates, section


def painter_from_settings(section: dict[str, Any] | None) -> PanelPainter:
    """The painter a project's [painter] table names; nothing heavy is imported until it paints."""
    backend, _, options = painter_settings(section)
    if backend == "animatic":
        from tools.backends.animatic import AnimaticPainter

        return AnimaticPainter()
    if backend == "diffusers":
        from tools.backends.diffusers_painter import DiffusersConfig, DiffusersPainter

        fields = {f.name for f in dataclasses.fields(DiffusersConfig)}
        unknown = sorted(set(options) - fields)
        if unknown or "model" not in options:
            raise InputError(f"[painter] for diffusers needs `model` and takes {sorted(fields)}; "
                             f"unknown: {unknown}")
        return DiffusersPainter(DiffusersConfig(**options))
    from tools.backends.openai_images import OpenAIImagesPainter

    key_env = options.pop("api_key_env", "OPENAI_API_KEY")
    allowed = {"base_url", "model", "size", "timeout", "quality"}
    if set(options) - allowed:
        raise InputError(f"[painter] for openai takes {sorted(allowed | {'api_key_env'})}; "
                         f"unknown: {sorted(set(options) - allowed)}")
    return OpenAIImagesPainter(api_key=os.environ.get(key_env), **options)


def animator_from_settings(section: dict[str, Any] | None) -> Any:
    """[motion] backend = "animatediff" (model, motion_adapter, steps, strength, width, height, device):
    image-to-video clips per shot on a GPU; anything else (the default "camera") returns None."""
    options = dict(section or {})
    backend = str(options.pop("backend", "camera"))
    if backend == "camera":
        return None
    if backend != "animatediff":
        raise InputError(f"[motion] backend = {backend!r} is unknown; use camera or animatediff")
    if "model" not in options:
        raise InputError("[motion] backend = animatediff needs model = an SD 1.5 diffusers folder")
    from tools.backends.diffusers_motion import DiffusersMotion

    return DiffusersMotion(**options)
