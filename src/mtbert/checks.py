"""What the params refer to on this machine: the model, the devices and their precisions.

:func:`mtbert.config.load_config` checks the params file on its own (types, ranges, keys that must agree); this
module checks what can only be known here, before anything loads: that the raw-data folder exists, that
``model.name`` resolves offline, that
``model.max_length`` fits the model, that each section's device is on this machine and runs its precision, and that
there is a GPU for each process of ``dist.nproc`` when training on GPUs.
Every failure is a :class:`~mtbert.errors.ConfigError` naming the key, the value and what is allowed.
"""

from __future__ import annotations

from pathlib import Path

import torch

from mtbert._typed import prefixed
from mtbert.config import Config
from mtbert.devices import autocast_dtype, pick_device
from mtbert.errors import ConfigError
from mtbert.pretrained import model_config


def check_machine(cfg: Config) -> None:
    """Raise :class:`ConfigError` if ``cfg`` asks for data, a model, a device or a precision this machine lacks."""
    if not Path(cfg.data.raw_dir).is_dir():
        raise ConfigError(
            f"data.raw_dir: {cfg.data.raw_dir!r} is not a folder; it holds the CS224N CSV files "
            "(make repro links ../shared/data there; make repro DATA=<folder> for another)"
        )
    try:
        with prefixed("model."):
            config = model_config(cfg.model.name)
            limit = getattr(config, "max_position_embeddings", None)
            if limit is not None and cfg.model.max_length > limit:
                raise ValueError(f"max_length: {cfg.model.max_length} exceeds the model's {limit} positions")
        layers = getattr(config, "num_hidden_layers", None)
        for section in ("train", "finetune", "predict"):
            settings = getattr(cfg, section)
            with prefixed(f"{section}."):
                device = pick_device(settings.device)
                autocast_dtype(settings.precision, device)
                if section != "predict" and layers is not None and settings.freeze_layers >= layers:
                    frozen = settings.freeze_layers
                    raise ValueError(f"freeze_layers: {frozen} of the model's {layers} layers; at least one must train")
            if section != "predict" and device.type == "cuda" and cfg.dist.nproc > torch.cuda.device_count():
                raise ValueError(
                    f"dist.nproc: {cfg.dist.nproc} processes, one per GPU, "
                    f"but this machine has {torch.cuda.device_count()}"
                )
    except ValueError as err:
        raise ConfigError(str(err)) from None
