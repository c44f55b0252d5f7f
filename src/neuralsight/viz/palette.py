"""Class colours shared by every segmentation figure and output, 2D and 3D.

One table, :data:`COLOURS`, gives class ``i`` its colour (cycling past the end); class 0 is background and
:data:`IGNORE` (255) marks padding. :func:`colourize` paints a label map, :func:`overlay` blends the classes
over an RGB image (background untouched), and :func:`rgba` gives a label map as a matplotlib overlay layer
(background transparent). :func:`save_label_png` writes a label map as a palette PNG: the pixel values are the
class indices, the palette their colours, so a viewer shows the classes and a reader gets the indices back.
The Error panels share :func:`error_map` (ok / false positive / false negative per pixel), its colours
(:data:`ERROR_COLOURS`, drawn over the image by :func:`error_rgba`) and :func:`class_legend`, which names
every class and both error kinds. Label maps may be 2D slices of volumes or whole images.
"""

from __future__ import annotations

IGNORE = 255
# Background first (black), then distinct hues; class i takes COLOURS[i % len(COLOURS)].
COLOURS = [(0, 0, 0), (255, 140, 0), (30, 144, 255), (220, 20, 60), (50, 205, 50), (186, 85, 211),
           (255, 215, 0), (0, 206, 209), (255, 105, 180), (139, 69, 19)]
BACKGROUND_SHOWN = (40, 40, 40)   # background when a mask is drawn on its own (not pure black: the axes are)
IGNORED_SHOWN = (128, 128, 128)
# Error codes of :func:`error_map` -> (legend name, RGB); chosen apart from each other and from the grey image.
OK, FALSE_POSITIVE, FALSE_NEGATIVE = 0, 1, 2
ERROR_COLOURS = {FALSE_POSITIVE: ("false positive", (255, 40, 40)), FALSE_NEGATIVE: ("false negative", (0, 210, 255))}
ERROR_KEY = ("red: false positive (a class predicted where the truth is background or another class), "
             "cyan: false negative (a true class predicted as background)")


def class_colour(index: int) -> tuple[int, int, int]:
    """RGB uint8 colour of class ``index`` (> 0)."""
    return COLOURS[index % len(COLOURS)]


def _lut(num_classes: int):
    import numpy as np

    lut = np.zeros((256, 3), dtype=np.uint8)
    for i in range(1, min(num_classes, IGNORE)):
        lut[i] = class_colour(i)
    lut[0] = BACKGROUND_SHOWN
    lut[IGNORE] = IGNORED_SHOWN
    return lut


def colourize(mask, num_classes: int):
    """Class indices uint8 ``(H, W)`` -> RGB uint8 ``(H, W, 3)``; background dark grey, ignored pixels grey."""
    import numpy as np

    return _lut(num_classes)[np.asarray(mask, dtype=np.uint8)]


def label_palette() -> list[int]:
    """The 256-entry palette (flat ``[r, g, b, ...]``) of a label PNG: index ``i`` in class ``i``'s colour."""
    entries = [class_colour(i) for i in range(256)]
    entries[IGNORE] = IGNORED_SHOWN
    return [v for rgb in entries for v in rgb]


def label_png(mask):
    """Class indices uint8 ``(H, W)`` -> a palette-mode ("P") PIL image holding the indices as pixel values."""
    import numpy as np
    from PIL import Image

    mask = np.ascontiguousarray(mask, dtype=np.uint8)
    image = Image.frombytes("P", (mask.shape[1], mask.shape[0]), mask.tobytes())
    image.putpalette(label_palette())
    return image


def save_label_png(path, mask):
    """Write ``mask`` (class indices ``(H, W)``) atomically as a palette PNG (see :func:`label_png`)."""
    from neuralsight.io import atomic_path

    with atomic_path(path) as tmp:
        label_png(mask).save(tmp, format="PNG")
    return path


def overlay(image, mask, num_classes: int, alpha: float = 0.45):
    """Blend class colours over an RGB uint8 image ``(H, W, 3)``; background and ignored pixels stay untouched."""
    import numpy as np

    mask = np.asarray(mask)
    col = colourize(mask, num_classes).astype(np.float32)
    fg = (mask > 0) & (mask < IGNORE)
    out = np.asarray(image).astype(np.float32)
    out[fg] = (1 - alpha) * out[fg] + alpha * col[fg]
    return out.clip(0, 255).astype(np.uint8)


def rgba(mask, alpha: float = 0.55):
    """Class indices ``(H, W)`` -> float RGBA ``(H, W, 4)`` in [0, 1] for ``imshow`` over a grey image:
    every class > 0 in its colour at ``alpha``, background and ignored pixels transparent."""
    import numpy as np

    mask = np.asarray(mask).astype(np.int64)
    out = np.zeros((*mask.shape, 4))
    for c in np.unique(mask):
        if 0 < c < IGNORE:
            out[mask == c] = (*(v / 255 for v in class_colour(int(c))), alpha)
    return out


def legend_handles(class_names: list[str], plt):
    """Coloured patches for ``fig.legend`` naming every class but the background."""
    return [plt.Rectangle((0, 0), 1, 1, color=[v / 255 for v in class_colour(i)])
            for i in range(1, len(class_names))]


def error_map(truth, pred, ignore: int | None = IGNORE):
    """Per pixel (or voxel) of two label maps: 0 ok, 1 false positive, 2 false negative (uint8, same shape).

    False positive: a foreground class is predicted where the truth is background or another class (a wrong
    class counts here). False negative: a true foreground class is predicted as background. Pixels whose truth is
    ``ignore`` (padding) are 0.
    """
    import numpy as np

    truth, pred = np.asarray(truth), np.asarray(pred)
    codes = np.zeros(truth.shape, dtype=np.uint8)
    valid = truth != ignore if ignore is not None else np.ones(truth.shape, dtype=bool)
    codes[valid & (pred > 0) & (pred != truth)] = FALSE_POSITIVE
    codes[valid & (truth > 0) & (pred == 0)] = FALSE_NEGATIVE
    return codes


def error_rgba(codes, alpha: float = 0.9):
    """Error codes ``(H, W)`` -> float RGBA ``(H, W, 4)`` for ``imshow`` over the image; correct pixels clear."""
    import numpy as np

    codes = np.asarray(codes)
    out = np.zeros((*codes.shape, 4))
    for code, (_, colour) in ERROR_COLOURS.items():
        out[codes == code] = (*(v / 255 for v in colour), alpha)
    return out


def class_legend(class_names: list[str], plt, errors: bool = True) -> tuple[list, list[str]]:
    """Handles and labels for ``fig.legend``: every class in the colour the panels show it in (background
    included), then the two error kinds of the Error panel."""
    patches = [plt.Rectangle((0, 0), 1, 1, color=[v / 255 for v in (BACKGROUND_SHOWN if i == 0 else
                                                                      class_colour(i))])
               for i in range(len(class_names))]
    labels = list(class_names)
    if errors:
        for name, colour in ERROR_COLOURS.values():
            patches.append(plt.Rectangle((0, 0), 1, 1, color=[v / 255 for v in colour]))
            labels.append(name)
    return patches, labels
