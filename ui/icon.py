"""The browser tab's icon, drawn here: a Material icon name would make every browser fetch it from
Google's font servers, which an offline machine cannot reach (and an online one need not)."""
from __future__ import annotations

import numpy as np
from PIL import Image

SIZE = 64


def app_icon() -> Image.Image:
    """A frame of film (dark, rounded) holding a dashed red box: the imputed box the app draws. An
    image, not an array: set_page_config compares its icon with strings, which an array refuses."""
    image = np.zeros((SIZE, SIZE, 4), np.uint8)
    y, x = np.mgrid[:SIZE, :SIZE]
    corner = 10
    cx, cy = np.clip(x, corner, SIZE - 1 - corner), np.clip(y, corner, SIZE - 1 - corner)
    rounded = (x - cx) ** 2 + (y - cy) ** 2 <= corner ** 2
    image[rounded] = (38, 39, 48, 255)
    lo, hi, width = 15, 48, 4
    box = (x >= lo) & (x <= hi) & (y >= lo) & (y <= hi)
    across = box & ((y < lo + width) | (y > hi - width))  # top and bottom edges, dashed along x
    down = box & ((x < lo + width) | (x > hi - width)) & ~across
    image[(across & ((x - lo) // 6 % 2 == 0)) | (down & ((y - lo) // 6 % 2 == 0))] = (255, 75, 75, 255)
    return Image.fromarray(image, "RGBA")
