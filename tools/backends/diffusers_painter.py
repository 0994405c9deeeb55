"""PanelPainter on a real Stable Diffusion / SDXL checkpoint through diffusers.

The pipeline is loaded once, lazily on the first panel (a checkpoint load costs seconds to a
minute; a storyboard has dozens of panels), and reused. Character consistency comes from an
IP-Adapter fed with each character's accepted reference sheet and from per-character LoRAs,
switched per panel. torch/diffusers are imported only when the first panel is painted.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from memory.errors import BackendError, InputError
from tools.backends.protocols import CharacterInShot, PanelRequest, PanelResult

if TYPE_CHECKING:
    from PIL import Image

# Animagine XL 4.0's recommended tag order: count, characters, composition, place, style, quality.
DEFAULT_PROMPT_TEMPLATE = (
    "{characters_count}, {character_tags}, {shot_tags}, {location_tags}, {style_tags}, "
    "masterpiece, high score, great score, absurdres"
)
DEFAULT_NEGATIVE_PROMPT = (
    "lowres, bad anatomy, bad hands, text, error, missing finger, extra digits, fewer digits, cropped, "
    "worst quality, low quality, low score, bad score, average score, signature, watermark, username, blurry"
)
# Fields a prompt template may use (str.format names):
#   characters_count  "1girl, 1boy" / "2girls" / "no humans" (from "1girl"-style look tags)
#   character_tags    each character's look tags, expression, pose, "open mouth" when speaking
#   shot_tags         framing, camera angle, lighting, mood (plus sheet/background tags by kind)
#   location_tags     location name and tags
#   style_tags        style guide tags and named palette colours
#   note              the director's note; appended at the end when the template does not use it
TEMPLATE_FIELDS = ("characters_count", "character_tags", "shot_tags", "location_tags", "style_tags", "note")

# 9:16 portrait sizes each family was trained around (multiples of 64).
FAMILY_SIZES = {"sdxl": (768, 1344), "sd": (512, 896)}
# h94/IP-Adapter layout, used when the config names only the repository/folder.
IP_ADAPTER_DEFAULTS = {
    "sd": ("models", "ip-adapter_sd15.safetensors"),
    "sdxl": ("sdxl_models", "ip-adapter_sdxl.safetensors"),
}

_FRAMING_TAGS = {
    "establishing": "establishing shot, wide shot, scenery",
    "wide": "wide shot, full body",
    "medium": "cowboy shot",
    "close-up": "close-up, portrait",
    "extreme close-up": "extreme close-up, face focus",
}
_ANGLE_TAGS = {
    "eye level": "",
    "low angle": "from below",
    "high angle": "from above",
    "bird's eye": "from above, aerial view",
    "worm's eye": "from below",
    "dutch": "dutch angle",
    "dutch angle": "dutch angle",
    "over the shoulder": "over the shoulder",
}
_EXPRESSION_TAGS = {
    "neutral": "",
    "happy": "smile",
    "sad": "sad, tears",
    "angry": "angry, frown",
    "surprised": "surprised, open mouth",
    "scared": "scared",
    "shy": "blush, looking away",
    "whisper": "hand over mouth",
}
_KIND_TAGS = {
    "character_sheet": "character sheet, full body, standing, simple background, white background",
    "background": "scenery, no humans",
}
_COUNT_TAG = re.compile(r"^(\d+)(girl|boy|other)s?$")


@dataclass(frozen=True)
class DiffusersConfig:
    """Settings of the [painter] table in project.toml for a diffusers checkpoint."""

    model: str                               # diffusers folder, .safetensors/.ckpt file, or hub id
    family: Literal["auto", "sd", "sdxl"] = "auto"
    device: str = "auto"                     # auto: CUDA fp16 when available, else CPU fp32
    dtype: str = "auto"                      # auto | float16 | bfloat16 | float32
    cpu_offload: bool = False                # accelerate model offload: fits SDXL into ~6 GB VRAM
    vae_tiling: bool = False                 # decode large images in tiles (less VRAM)
    steps: int = 28
    guidance: float = 6.0
    width: int | None = None                 # None: the family's 9:16 size (SDXL 768x1344, SD 512x896)
    height: int | None = None
    ip_adapter: str | None = None            # folder or hub id in the h94/IP-Adapter layout
    ip_adapter_subfolder: str | None = None  # None: "models" (SD) / "sdxl_models" (SDXL)
    ip_adapter_weight_name: str | None = None  # None: ip-adapter_sd15 / ip-adapter_sdxl .safetensors
    ip_adapter_image_encoder: str | None = None  # separate CLIP vision folder; None: <ip>/<sub>/image_encoder
    ip_adapter_scale: float = 0.5
    loras: dict[str, str] = field(default_factory=dict)  # character id -> LoRA file/folder/hub id
    lora_scale: float = 0.8
    prompt_template: str = DEFAULT_PROMPT_TEMPLATE
    negative_prompt: str = DEFAULT_NEGATIVE_PROMPT
    single_file_config: str | None = None    # diffusers config folder for from_single_file offline
    local_files_only: bool = True            # never download unless the user opts in

    def __post_init__(self) -> None:
        for name in ("width", "height"):
            value = getattr(self, name)
            if value is not None and (value < 64 or value % 8):
                raise InputError(f"[painter] {name} = {value} must be a multiple of 8 and at least 64")
        if self.steps < 1:
            raise InputError(f"[painter] steps = {self.steps} must be at least 1")
        try:
            self.prompt_template.format_map({name: "" for name in TEMPLATE_FIELDS})
        except (KeyError, IndexError, ValueError) as exc:
            raise InputError(
                f"[painter] prompt_template {self.prompt_template!r} uses an unknown field {exc}; "
                f"use only {', '.join('{' + f + '}' for f in TEMPLATE_FIELDS)}"
            ) from None


# --------------------------------------------------------------------------- image helpers


def fit_cover(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale to cover ``width`` x ``height`` and centre-crop (Lanczos): 768x1344 -> 1080x1920."""
    from PIL import Image as PILImage

    image = image.convert("RGB")
    if image.size == (width, height):
        return image
    src_w, src_h = image.size
    scale = max(width / src_w, height / src_h)
    crop_w, crop_h = width / scale, height / scale
    left, top = (src_w - crop_w) / 2, (src_h - crop_h) / 2
    return image.resize(
        (width, height), PILImage.Resampling.LANCZOS, box=(left, top, left + crop_w, top + crop_h)
    )


def save_png_atomic(image: Image.Image, path: Path) -> Path:
    """Write a PNG next to ``path`` and rename it into place, so a crash never leaves half a file.

    zlib level 1: a 1080x1920 panel saves in about a tenth of the time of Pillow's default level 6
    (seconds on a loaded 2-core machine) for files some 15% larger.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        image.save(tmp, format="PNG", compress_level=1)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def panel_filename(request: PanelRequest, fingerprint: str) -> str:
    """``<shot>-<seed>-<hash>.png``: a redo with another note/model never overwrites an earlier panel."""
    shot = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.shot_id).strip("._") or "panel"
    digest = hashlib.sha256(fingerprint.encode()).hexdigest()[:10]
    return f"{shot}-{request.seed}-{digest}.png"


# --------------------------------------------------------------------------- prompts


def _join(*parts: str) -> str:
    """Join comma-separated tag strings, dropping empties and duplicates (order kept)."""
    seen: list[str] = []
    for part in parts:
        for tag in part.split(","):
            tag = tag.strip()
            if tag and tag.lower() not in (s.lower() for s in seen):
                seen.append(tag)
    return ", ".join(seen)


def _characters_count(characters: tuple[CharacterInShot, ...]) -> str:
    counts = {"girl": 0, "boy": 0, "other": 0}
    for character in characters:
        kind = "other"
        for tag in character.look_tags:
            match = _COUNT_TAG.match(tag.strip().lower())
            if match:
                kind = match.group(2)
                break
        counts[kind] += 1
    if not any(counts.values()):
        return "no humans"
    return ", ".join(f"{n}{kind}{'s' if n > 1 else ''}" for kind, n in counts.items() if n)


def _character_tags(character: CharacterInShot) -> str:
    look = ", ".join(t for t in character.look_tags if not _COUNT_TAG.match(t.strip().lower()))
    expression = _EXPRESSION_TAGS.get(character.expression.lower(), character.expression)
    return _join(look, expression, character.pose, "open mouth" if character.speaking else "")


def prompt_fields(request: PanelRequest) -> dict[str, str]:
    """The template fields for one panel (see TEMPLATE_FIELDS)."""
    characters = () if request.kind == "background" else request.characters
    palette_names = ", ".join(c for c in request.palette if not c.startswith("#"))
    return {
        "characters_count": _characters_count(characters),
        "character_tags": _join(*(_character_tags(c) for c in characters)),
        "shot_tags": _join(
            _KIND_TAGS.get(request.kind, ""),
            _FRAMING_TAGS.get(request.framing, request.framing) if request.kind == "panel" else "",
            _ANGLE_TAGS.get(request.angle.lower(), request.angle),
            request.lighting,
            request.mood,
        ),
        "location_tags": _join(request.location_name.lower(), ", ".join(request.location_tags)),
        "style_tags": _join(", ".join(request.style_tags), palette_names),
        "note": request.note.strip(),
    }


def build_prompt(request: PanelRequest, template: str = DEFAULT_PROMPT_TEMPLATE) -> str:
    """Tag prompt in the template's order; the director's note goes last when the template omits it."""
    fields = prompt_fields(request)
    prompt = _join(template.format_map(fields))
    if "{note}" not in template and fields["note"]:
        prompt = f"{prompt}, {fields['note']}"
    return prompt


def build_negative(request: PanelRequest, base: str = DEFAULT_NEGATIVE_PROMPT) -> str:
    return _join(base, request.negative)


# --------------------------------------------------------------------------- painter


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA OOM (torch.cuda.OutOfMemoryError or a RuntimeError saying so) or a failed CPU allocation."""
    text = str(exc).lower()
    return (
        isinstance(exc, MemoryError)
        or type(exc).__name__ == "OutOfMemoryError"
        or "out of memory" in text
        or "can't allocate memory" in text
    )


def _looks_like_path(model: str) -> bool:
    return (
        model.startswith(("/", "./", "../", "~", "\\"))
        or Path(model).suffix.lower() in (".safetensors", ".ckpt")
        or os.path.isabs(model)
        or model.count("/") > 1
    )


class DiffusersPainter:
    """Paints panels with an SD 1.5 or SDXL checkpoint; one pipeline load serves every panel."""

    name = "diffusers"

    def __init__(self, config: DiffusersConfig) -> None:
        self.config = config
        self.load_count = 0            # pipeline loads so far: 1 for a whole storyboard
        self.family: str | None = None  # "sd" | "sdxl" once loaded
        self._pipe: Any = None
        self._device = "cpu"
        self._ip_loaded = False
        self._loras: dict[str, str] = {}   # adapter name -> source it was loaded from
        self._lock = threading.Lock()      # one panel at a time: adapters are pipeline state

    # ----------------------------------------------------------------------- loading

    def _resolve_device(self) -> tuple[str, Any]:
        import torch

        device = self.config.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendError(f"[painter] device = {device!r} but torch sees no CUDA GPU; set device = \"cpu\"")
        names = {"float16": torch.float16, "fp16": torch.float16, "bfloat16": torch.bfloat16,
                 "bf16": torch.bfloat16, "float32": torch.float32, "fp32": torch.float32}
        if self.config.dtype == "auto":
            dtype = torch.float16 if device.startswith("cuda") else torch.float32
        elif self.config.dtype in names:
            dtype = names[self.config.dtype]
        else:
            raise BackendError(f"[painter] dtype = {self.config.dtype!r} is unknown; use auto, float16, bfloat16 or float32")
        return device, dtype

    def _detect_family(self, source: Path | None) -> str:
        if self.config.family != "auto":
            return self.config.family
        if source is None:
            return "auto"
        if source.is_dir():
            index = source / "model_index.json"
            if not index.is_file():
                raise BackendError(
                    f"checkpoint folder {source} has no model_index.json; point [painter] model at a diffusers "
                    "pipeline folder (save_pretrained layout) or a .safetensors file"
                )
            class_name = json.loads(index.read_text()).get("_class_name", "")
            if "XL" in class_name:
                return "sdxl"
            if class_name.startswith("StableDiffusion"):
                return "sd"
            raise BackendError(
                f"checkpoint {source} is a {class_name or 'unknown'} pipeline; only Stable Diffusion 1.x and "
                "SDXL checkpoints are supported: set [painter] model to one"
            )
        if source.suffix.lower() == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(source), framework="pt") as handle:
                if any(key.startswith("conditioner.embedders.1") for key in handle.keys()):  # noqa: SIM118 (safe_open is no dict)
                    return "sdxl"
            return "sd"
        return "sdxl" if "xl" in source.name.lower() else "sd"

    def _load(self) -> Any:
        import diffusers

        cfg = self.config
        local = Path(cfg.model).expanduser()
        if not local.exists() and _looks_like_path(cfg.model):
            raise BackendError(
                f"checkpoint {cfg.model} does not exist; set [painter] model in project.toml to a diffusers "
                "folder or .safetensors file"
            )
        source = local if local.exists() else None
        family = self._detect_family(source)
        device, dtype = self._resolve_device()
        classes = {"sd": diffusers.StableDiffusionPipeline, "sdxl": diffusers.StableDiffusionXLPipeline}
        pipeline_class = classes.get(family, diffusers.DiffusionPipeline)
        extra: dict[str, Any] = {"safety_checker": None, "requires_safety_checker": False} if family == "sd" else {}
        # diffusers renamed torch_dtype to dtype (torch_dtype warns); older releases know only torch_dtype.
        from diffusers.pipelines import pipeline_utils

        extra["dtype" if hasattr(pipeline_utils, "_resolve_dtype") else "torch_dtype"] = dtype
        try:
            if source is not None and source.is_file():
                single = {"config": cfg.single_file_config} if cfg.single_file_config else {}
                pipe = pipeline_class.from_single_file(
                    str(source), local_files_only=cfg.local_files_only, **single, **extra
                )
            else:
                pipe = pipeline_class.from_pretrained(
                    str(source or cfg.model), local_files_only=cfg.local_files_only, **extra
                )
        except (OSError, ValueError) as exc:
            hint = (
                "download it once with local_files_only = false, or set [painter] model to a local folder"
                if source is None
                else "check that it is a complete Stable Diffusion / SDXL checkpoint"
                + ("; offline single files also need [painter] single_file_config" if source.is_file() else "")
            )
            raise BackendError(f"could not load checkpoint {cfg.model}: {exc}; {hint}") from exc
        if family == "auto":
            names = {"StableDiffusionPipeline": "sd", "StableDiffusionXLPipeline": "sdxl"}
            family = names.get(type(pipe).__name__, "")
            if not family:
                raise BackendError(
                    f"checkpoint {cfg.model} loaded as {type(pipe).__name__}; only SD 1.x and SDXL are supported"
                )
        self.family = family
        pipe.set_progress_bar_config(disable=True)
        if cfg.cpu_offload and device.startswith("cuda"):
            pipe.enable_model_cpu_offload()
        else:
            pipe.to(device)
        if cfg.vae_tiling:
            pipe.vae.enable_tiling()
        self._device = device
        if cfg.ip_adapter:
            self._load_ip_adapter(pipe, family)
        return pipe

    def _load_ip_adapter(self, pipe: Any, family: str) -> None:
        cfg = self.config
        default_sub, default_weight = IP_ADAPTER_DEFAULTS[family]
        subfolder = default_sub if cfg.ip_adapter_subfolder is None else cfg.ip_adapter_subfolder
        weight_name = cfg.ip_adapter_weight_name or default_weight
        ip_path = Path(cfg.ip_adapter).expanduser()
        if not ip_path.exists() and _looks_like_path(cfg.ip_adapter):
            raise BackendError(
                f"IP-Adapter {cfg.ip_adapter} does not exist; set [painter] ip_adapter to an IP-Adapter folder "
                "or remove it"
            )
        source = str(ip_path) if ip_path.exists() else cfg.ip_adapter
        try:
            encoder_folder: str | None = "image_encoder"
            if cfg.ip_adapter_image_encoder:
                from transformers import CLIPVisionModelWithProjection

                encoder = CLIPVisionModelWithProjection.from_pretrained(
                    str(Path(cfg.ip_adapter_image_encoder).expanduser()), dtype=pipe.dtype,
                    local_files_only=cfg.local_files_only,
                ).to(pipe.device)
                pipe.register_modules(image_encoder=encoder)
                encoder_folder = None
            pipe.load_ip_adapter(
                source, subfolder=subfolder, weight_name=weight_name, image_encoder_folder=encoder_folder,
                local_files_only=cfg.local_files_only,
            )
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            if is_out_of_memory(exc):
                raise
            raise BackendError(
                f"could not load IP-Adapter {cfg.ip_adapter} ({subfolder}/{weight_name}): {exc}; check "
                "[painter] ip_adapter, ip_adapter_subfolder and ip_adapter_weight_name"
            ) from exc
        self._ip_loaded = True

    def _ensure_pipe(self) -> Any:
        if self._pipe is None:
            try:
                self._pipe = self._load()
            except BackendError:
                raise
            except Exception as exc:
                if is_out_of_memory(exc):
                    raise BackendError(self._oom_message("loading the checkpoint")) from exc
                raise
            self.load_count += 1
        return self._pipe

    # ----------------------------------------------------------------------- per panel

    def _lora_source(self, character: CharacterInShot) -> str | None:
        return character.lora or self.config.loras.get(character.id)

    def _activate_loras(self, pipe: Any, characters: tuple[CharacterInShot, ...]) -> list[str]:
        """Load each present character's LoRA once; switch the active set to exactly those."""
        active: list[str] = []
        labels: list[str] = []
        for character in characters:
            source = self._lora_source(character)
            if not source:
                continue
            adapter = "char_" + re.sub(r"\W", "_", character.id)
            if self._loras.get(adapter) != source:
                if adapter in self._loras:
                    pipe.delete_adapters(adapter)
                    del self._loras[adapter]
                self._load_lora(pipe, source, adapter)
                self._loras[adapter] = source
            if adapter not in active:
                active.append(adapter)
                labels.append(f"{character.id}={source}")
        if active:
            pipe.enable_lora()
            pipe.set_adapters(active, adapter_weights=[self.config.lora_scale] * len(active))
        elif self._loras:
            pipe.disable_lora()
        return labels

    def _load_lora(self, pipe: Any, source: str, adapter: str) -> None:
        path = Path(source).expanduser()
        if not path.exists() and _looks_like_path(source):
            raise BackendError(
                f"LoRA {source} for adapter {adapter} does not exist; fix the character's LoRA path or "
                "[painter] loras in project.toml"
            )
        try:
            if path.is_file():
                pipe.load_lora_weights(str(path.parent), weight_name=path.name, adapter_name=adapter)
            else:
                pipe.load_lora_weights(
                    str(path) if path.exists() else source, adapter_name=adapter,
                    local_files_only=self.config.local_files_only,
                )
        except (OSError, ValueError, KeyError) as exc:
            raise BackendError(
                f"could not load LoRA {source}: {exc}; check that it is a {self.family} LoRA"
            ) from exc

    def _ip_kwargs(self, pipe: Any, characters: tuple[CharacterInShot, ...]) -> tuple[dict[str, Any], list[str]]:
        """IP-Adapter inputs: the present characters' reference sheets, or scale 0 when none."""
        if not self._ip_loaded:
            return {}, []
        from PIL import Image as PILImage

        refs: list[Any] = []
        names: list[str] = []
        for character in characters:
            if character.reference_image is None:
                continue
            ref_path = Path(character.reference_image)
            try:
                with PILImage.open(ref_path) as handle:
                    refs.append(handle.convert("RGB"))
            except (OSError, ValueError) as exc:
                raise InputError(
                    f"reference image {ref_path} of {character.id} cannot be read ({exc}); accept a new "
                    "character sheet"
                ) from exc
            names.append(ref_path.name)
        if refs:
            pipe.set_ip_adapter_scale(self.config.ip_adapter_scale)
            # One adapter, several images: diffusers takes a nested list [[img1, img2]].
            return {"ip_adapter_image": refs[0] if len(refs) == 1 else [refs]}, names
        # The adapter stays loaded; a neutral image at scale 0 adds exactly nothing.
        pipe.set_ip_adapter_scale(0.0)
        return {"ip_adapter_image": PILImage.new("RGB", (224, 224), (127, 127, 127))}, []

    def _size(self) -> tuple[int, int]:
        default_w, default_h = FAMILY_SIZES.get(self.family or "sdxl", FAMILY_SIZES["sdxl"])
        return self.config.width or default_w, self.config.height or default_h

    def _oom_message(self, what: str) -> str:
        w, h = self._size()
        return (
            f"out of memory {what} at {w}x{h} on {self._device} with {self.config.model}; set [painter] "
            "cpu_offload = true and vae_tiling = true, or a smaller width/height (multiples of 64)"
        )

    def paint(self, request: PanelRequest, out_dir: Path) -> PanelResult:
        """Paint one panel and write it, fitted to request.width x request.height, as a PNG."""
        import torch

        with self._lock:
            pipe = self._ensure_pipe()
            characters = () if request.kind == "background" else request.characters
            prompt = build_prompt(request, self.config.prompt_template)
            negative = build_negative(request, self.config.negative_prompt)
            ip_kwargs, ref_names = self._ip_kwargs(pipe, characters)
            lora_labels = self._activate_loras(pipe, characters)
            width, height = self._size()
            model = f"diffusers:{self.config.model}"
            if ref_names:
                model += f"+ip:{self.config.ip_adapter}@{self.config.ip_adapter_scale}[{','.join(ref_names)}]"
            if lora_labels:
                model += f"+lora:{','.join(lora_labels)}@{self.config.lora_scale}"
            generator_device = "cpu" if self.config.cpu_offload else self._device
            generator = torch.Generator(device=generator_device).manual_seed(request.seed)
            try:
                with torch.inference_mode():
                    image = pipe(
                        prompt=prompt, negative_prompt=negative, width=width, height=height,
                        num_inference_steps=self.config.steps, guidance_scale=self.config.guidance,
                        generator=generator, output_type="pil", **ip_kwargs,
                    ).images[0]
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                raise BackendError(self._oom_message(f"painting {request.shot_id}")) from exc
            fitted = fit_cover(image, request.width, request.height)
            fingerprint = "\n".join(
                (model, prompt, negative, str(self.config.steps), str(self.config.guidance), f"{width}x{height}")
            )
            path = save_png_atomic(fitted, Path(out_dir) / panel_filename(request, fingerprint))
        return PanelResult(image=path, seed=request.seed, model=model)
