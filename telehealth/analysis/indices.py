"""MediaPipe Face Mesh landmark indices used by the measurements (478 points with iris refinement).

MediaPipe's "right" points are the subject's right, i.e. the image left of an unmirrored photo.
Each contour runs from the subject's lateral side towards the midline, or across the mouth from the
subject's right corner to the left one.
"""

from __future__ import annotations

from typing import Final

N_LANDMARKS: Final = 478

PUPIL: Final = {"right": 468, "left": 473}
# Iris rings: (horizontal pair, vertical pair) per eye.
IRIS_RING: Final = {"right": ((469, 471), (470, 472)), "left": ((474, 476), (475, 477))}
BROW_UPPER: Final = {"right": (70, 63, 105, 66, 107), "left": (300, 293, 334, 296, 336)}
LID_UPPER: Final = {"right": (246, 161, 160, 159, 158, 157, 173), "left": (466, 388, 387, 386, 385, 384, 398)}
LID_LOWER: Final = {"right": (7, 163, 144, 145, 153, 154, 155), "left": (249, 390, 373, 374, 380, 381, 382)}
MOUTH_CORNER: Final = {"right": 61, "left": 291}
LIP_LOWER_OUTER: Final = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
LIP_UPPER_INNER: Final = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIP_LOWER_INNER: Final = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
# For the head-pose estimate: outer eye corners, forehead top and chin.
EYE_OUTER: Final = {"right": 33, "left": 263}
FOREHEAD: Final = 10
CHIN: Final = 152


def _mirror_pairs() -> dict[int, int]:
    """Index pairs that swap when the face is mirrored (points on the midline map to themselves)."""
    pairs: dict[int, int] = {}

    def add(a: tuple[int, ...] | int, b: tuple[int, ...] | int) -> None:
        for i, j in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,), strict=True):
            pairs[i], pairs[j] = j, i

    add(PUPIL["right"], PUPIL["left"])
    # A mirror turns the right iris's outer point into the left iris's outer point.
    add((469, 470, 471, 472), (476, 475, 474, 477))
    for group in (BROW_UPPER, LID_UPPER, LID_LOWER):
        add(group["right"], group["left"])
    add(EYE_OUTER["right"], EYE_OUTER["left"])
    for contour in (LIP_LOWER_OUTER, LIP_UPPER_INNER, LIP_LOWER_INNER):
        add(contour, tuple(reversed(contour)))
    return pairs


MIRROR_PAIRS: Final = _mirror_pairs()
"""Landmark index -> its counterpart on the other side, for the points the measurements use."""
