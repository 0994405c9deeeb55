"""Tiny randomly initialised diffusers pipelines, built in code and saved like real checkpoints.

No diffusion weights ship on PyPI and nothing may be downloaded at run time, so tests and benches
exercise the real pipeline code (from_pretrained, IP-Adapter, LoRA, AnimateDiff) on components
shaped like diffusers' own test fixtures (``get_dummy_components``): a two-block UNet with
``block_out_channels=(32, 64)``, a two-block VAE, CLIP text encoders of hidden size 32 and a
word-level tokenizer built with ``tokenizers``. The images are noise; the code paths are real.
torch/diffusers/transformers are imported inside the builders.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

# Words the tiny tokenizer knows; anything else maps to <unk>. Enough of the prompt vocabulary
# (framing, expressions, quality tags) that different prompts give different token ids.
_WORDS = """
1girl 1boy 1other 2girls 2boys 2others 3girls no humans solo smile sad tears angry surprised scared
open mouth closed eyes blush long short black white red blue green yellow pink purple brown silver
blonde hair eyes school uniform jacket dress shirt skirt coat glasses hat ribbon sword standing
sitting walking running looking at viewer from below above side behind dutch angle cowboy shot full
body portrait close-up extreme face focus wide establishing scenery sky city street rooftop room
classroom night day sunset rain snow forest beach indoors outdoors light lighting dramatic soft
backlighting rim moody tense calm romantic anime style cel shading flat color watercolor masterpiece
high score great absurdres lowres bad anatomy hands text error missing finger extra digits fewer
cropped worst quality low average signature watermark username blurry character sheet simple
background a an the of in on with and her his their is at to
""".split()  # noqa: SIM905 (a word list reads better as text)

_SPECIALS = ("<|startoftext|>", "<pad>", "<|endoftext|>", "<unk>")


def tiny_tokenizer() -> Any:
    """A CLIP-shaped word-level tokenizer (bos/eos/pad, max length 77), no download."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocab: dict[str, int] = {token: i for i, token in enumerate(_SPECIALS)}
    for word in _WORDS:
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation(behavior="removed")]
    )
    tok.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>",
        pair="<|startoftext|> $A <|endoftext|> $B <|endoftext|>",
        special_tokens=[("<|startoftext|>", 0), ("<|endoftext|>", 2)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|startoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<pad>",
        unk_token="<unk>",
        model_max_length=77,
    )


def _text_config(**overrides: Any) -> Any:
    from transformers import CLIPTextConfig

    params: dict[str, Any] = {
        "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1, "hidden_size": 32, "intermediate_size": 37,
        "layer_norm_eps": 1e-05, "num_attention_heads": 4, "num_hidden_layers": 5, "vocab_size": 1000,
        "hidden_act": "gelu", "projection_dim": 32,
    }
    params.update(overrides)
    return CLIPTextConfig(**params)


def _tiny_vae() -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=[32, 64], in_channels=3, out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=4, sample_size=128,
    )


def tiny_sd_components(seed: int = 0) -> dict[str, Any]:
    """Components of a StableDiffusionPipeline (SD 1.5 layout), randomly initialised from ``seed``."""
    import torch
    from diffusers import DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=2, sample_size=32, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, norm_num_groups=32,
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        clip_sample=False, set_alpha_to_one=False, steps_offset=1,
    )
    torch.manual_seed(seed)
    vae = _tiny_vae()
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(_text_config())
    return {
        "unet": unet, "scheduler": scheduler, "vae": vae, "text_encoder": text_encoder,
        "tokenizer": tiny_tokenizer(), "safety_checker": None, "feature_extractor": None,
        "image_encoder": None,
    }


def tiny_sdxl_components(seed: int = 0) -> dict[str, Any]:
    """Components of a StableDiffusionXLPipeline: two text encoders (32 + 32 -> cross-attention 64)."""
    import torch
    from diffusers import EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=2, sample_size=32, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True,
        addition_embed_type="text_time", addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=80,  # 6 time ids * 8 + pooled text 32
        cross_attention_dim=64, norm_num_groups=1,
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, steps_offset=1, beta_schedule="scaled_linear",
        timestep_spacing="leading",
    )
    torch.manual_seed(seed)
    vae = _tiny_vae()
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(_text_config())
    text_encoder_2 = CLIPTextModelWithProjection(_text_config())
    return {
        "unet": unet, "scheduler": scheduler, "vae": vae,
        "text_encoder": text_encoder, "tokenizer": tiny_tokenizer(),
        "text_encoder_2": text_encoder_2, "tokenizer_2": tiny_tokenizer(),
        "image_encoder": None, "feature_extractor": None,
    }


def save_tiny_sd(path: Path, seed: int = 0) -> Path:
    """Save a tiny StableDiffusionPipeline to ``path`` (diffusers folder layout) and return it."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline(**tiny_sd_components(seed), requires_safety_checker=False)
    pipe.save_pretrained(path, safe_serialization=True)
    return Path(path)


def save_tiny_sdxl(path: Path, seed: int = 0) -> Path:
    """Save a tiny StableDiffusionXLPipeline to ``path`` (diffusers folder layout) and return it."""
    from diffusers import StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline(**tiny_sdxl_components(seed))
    pipe.save_pretrained(path, safe_serialization=True)
    return Path(path)


def save_tiny_ip_adapter(
    path: Path, cross_attention_dim: int, block_out_channels: tuple[int, ...] = (32, 64),
    unet: Any = None, seed: int = 0, weight_name: str = "ip-adapter.safetensors",
) -> Path:
    """Save a tiny IP-Adapter in the h94/IP-Adapter layout that ``load_ip_adapter`` reads.

    ``path/<weight_name>`` holds ``image_proj.proj.*``/``image_proj.norm.*`` (the plain IP-Adapter
    ``ImageProjection``: CLIP image embeds -> 4 extra tokens) and ``ip_adapter.<k>.to_k_ip/to_v_ip``
    for every cross-attention layer, numbered 1, 3, 5... in ``unet.attn_processors`` order, exactly
    as ``UNet2DConditionLoadersMixin._convert_ip_adapter_attn_to_diffusers`` walks them.
    ``path/image_encoder`` holds a tiny ``CLIPVisionModelWithProjection`` (224 px input, the size
    of the default ``CLIPImageProcessor`` that load_ip_adapter creates). Load it with
    ``pipe.load_ip_adapter(path, subfolder="", weight_name=weight_name)``.
    ``unet`` (optional) gives the attention layout; without it a tiny UNet of the given
    ``block_out_channels``/``cross_attention_dim`` is assumed (SD layout when 32, SDXL when 64).
    """
    import torch
    from safetensors.torch import save_file
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if unet is None:
        unet_components = tiny_sdxl_components(seed) if cross_attention_dim == 64 else tiny_sd_components(seed)
        unet = unet_components["unet"]
    block_out_channels = tuple(unet.config.block_out_channels)
    cross_attention_dim = int(unet.config.cross_attention_dim)

    gen = torch.Generator().manual_seed(seed)
    image_embed_dim = 32
    tensors: dict[str, torch.Tensor] = {
        "image_proj.proj.weight": torch.randn(cross_attention_dim * 4, image_embed_dim, generator=gen) * 0.1,
        "image_proj.proj.bias": torch.zeros(cross_attention_dim * 4),
        "image_proj.norm.weight": torch.ones(cross_attention_dim),
        "image_proj.norm.bias": torch.zeros(cross_attention_dim),
    }
    key_id = 1
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue
        if name.startswith("mid_block"):
            hidden = block_out_channels[-1]
        elif name.startswith("up_blocks"):
            hidden = list(reversed(block_out_channels))[int(name[len("up_blocks.")])]
        else:
            hidden = block_out_channels[int(name[len("down_blocks.")])]
        for proj in ("to_k_ip", "to_v_ip"):
            tensors[f"ip_adapter.{key_id}.{proj}.weight"] = (
                torch.randn(hidden, cross_attention_dim, generator=gen) * 0.1
            )
        key_id += 2
    save_file(tensors, str(path / weight_name))

    torch.manual_seed(seed)
    encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=32, projection_dim=image_embed_dim, num_hidden_layers=2, num_attention_heads=4,
            image_size=224, patch_size=32, intermediate_size=37, num_channels=3,
        )
    )
    encoder.save_pretrained(path / "image_encoder", safe_serialization=True)
    return path


def save_tiny_lora(pipe_or_unet: Any, path: Path, seed: int, rank: int = 4) -> Path:
    """Save a random (non-zero) UNet LoRA for a tiny pipeline as ``path/pytorch_lora_weights.safetensors``.

    peft initialises LoRA B to zero (a no-op adapter); ``init_lora_weights=False`` plus a seeded
    re-draw gives an adapter that visibly changes the output, so switching adapters is testable.
    The adapter is removed from the UNet again afterwards.
    """
    import torch
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet = getattr(pipe_or_unet, "unet", pipe_or_unet)
    adapter = f"tiny_lora_{seed}"
    config = LoraConfig(
        r=rank, lora_alpha=rank, init_lora_weights=False,
        target_modules=["to_q", "to_k", "to_v", "to_out.0"],
    )
    unet.add_adapter(config, adapter_name=adapter)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in unet.named_parameters():
            if f".{adapter}." in name and "lora_" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.3)
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet, adapter_name=adapter))
    unet.delete_adapters(adapter)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    StableDiffusionPipeline.save_lora_weights(path, unet_lora_layers=layers, safe_serialization=True)
    return path


def tiny_motion_adapter(seed: int = 0) -> Any:
    """A tiny AnimateDiff MotionAdapter matching the tiny SD UNet's (32, 64) channels."""
    import torch
    from diffusers import MotionAdapter

    torch.manual_seed(seed)
    return MotionAdapter(
        block_out_channels=(32, 64), motion_layers_per_block=2, motion_norm_num_groups=2,
        motion_num_attention_heads=4,
    )


def save_tiny_motion_adapter(path: Path, seed: int = 0) -> Path:
    """Save a tiny MotionAdapter to ``path`` (diffusers folder layout) and return it."""
    tiny_motion_adapter(seed).save_pretrained(path, safe_serialization=True)
    return Path(path)
