"""An easy weakly-supervised task for training tests: bright blobs are class 0, dark blobs class 1."""

from __future__ import annotations

import torch
from monai.data import Dataset


def make_items(count: int, size: tuple[int, int] = (128, 96), seed: int = 0, radius: int = 10) -> list[dict]:
    """Noise images; each class is present with probability 1/2 as a disk of +3 (class 0) or -3 (class 1)."""
    generator = torch.Generator().manual_seed(seed)
    rows = torch.arange(size[0]).reshape(-1, 1)
    cols = torch.arange(size[1]).reshape(1, -1)
    items = []
    for _ in range(count):
        image = torch.randn(1, *size, generator=generator) * 0.5
        label = (torch.rand(2, generator=generator) < 0.5).float()
        mask = torch.zeros(2, *size)
        for c, sign in enumerate((3.0, -3.0)):
            if label[c] > 0:
                r = int(torch.randint(radius, size[0] - radius, (1,), generator=generator))
                q = int(torch.randint(radius, size[1] - radius, (1,), generator=generator))
                disk = ((rows - r) ** 2 + (cols - q) ** 2) <= radius**2
                image[0][disk] += sign
                mask[c][disk] = 1.0
        items.append({"image": image, "label": label, "mask": mask, "mask_available": torch.ones(2)})
    return items


def make_dataset(count: int, seed: int = 0, **kwargs) -> Dataset:
    return Dataset(make_items(count, seed=seed, **kwargs))


#: A tiny GLAM for 128×96 inputs with 32×32 patches.
TINY_GLAM = {
    "patch_size": 32,
    "global_channels": (8, 8, 16, 16, 16),
    "global_blocks": (1, 1, 1, 1, 1),
    "local_channels": (8, 8, 8, 8),
    "local_blocks": (1, 1, 1, 1),
    "global_top_t": 0.1,
}
