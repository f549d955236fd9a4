"""Build an agent (an SB3 algorithm or one of simrl's torch agents) from a plain config."""

from __future__ import annotations

import importlib
from typing import Any

import torch


def resolve_device(device: str) -> str:
    """``"auto"`` becomes ``"cuda"`` when torch sees a GPU, else ``"cpu"``; other values are checked."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu" or device.startswith("cuda"):
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but torch sees no CUDA GPU; use 'auto' or 'cpu'")
        return device
    raise ValueError(f"unknown device {device!r}; accepted: 'auto', 'cpu', 'cuda', 'cuda:N'")


def load_class(class_path: str) -> type:
    """Import ``package.module.Class`` (or ``package.Class``), with an error naming the path."""
    module_name, _, class_name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ValueError(f"cannot import agent class {class_path!r}: {exc}") from exc


def build_agent(
    class_path: str,
    env: Any,
    policy: str | None = None,
    kwargs: dict[str, Any] | None = None,
    seed: int | None = None,
    device: str = "auto",
    tensorboard_log: str | None = None,
    verbose: int = 0,
) -> Any:
    """Instantiate ``class_path`` on ``env`` (an SB3 ``VecEnv``) with SB3's keyword conventions.

    ``policy`` is the first positional argument of SB3 algorithms; simrl's own agents take
    none (``policy=None``).
    """
    cls = load_class(class_path)
    common = dict(seed=seed, device=resolve_device(device), tensorboard_log=tensorboard_log, verbose=verbose)
    args = (policy, env) if policy is not None else (env,)
    return cls(*args, **common, **(kwargs or {}))
