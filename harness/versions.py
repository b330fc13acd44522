"""The packages whose versions a run (spec.json) and a claim report (claims.json) record.

Read from installed metadata, so nothing heavy is imported to ask.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable
from importlib import metadata

PACKAGES = ("torch", "transformers", "mergekit", "peft", "accelerate", "safetensors", "numpy", "scipy",
            "matplotlib", "pytest", "uplab")


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each package, None where it is not installed."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def versions() -> dict[str, str | None]:
    """What a run records: python, every package, and torch's build."""
    import torch

    out = {"python": platform.python_version(), **package_versions()}
    # torch's own string names its build (+cpu, +cu130), which the wheel metadata may not
    out.update(torch=torch.__version__, cuda=torch.version.cuda)
    return out
