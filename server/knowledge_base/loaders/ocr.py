"""Offline OCR through RapidOCR: ONNX detection and recognition models shipped inside its wheel (zh + en)."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rapidocr_onnxruntime import RapidOCR

logger = logging.getLogger(__name__)

_engine: RapidOCR | None = None
_lock = threading.Lock()
# Pictures smaller than this (icons, bullets, rules) hold no text worth an OCR pass.
MIN_SIDE_PX = 24


def _get_engine() -> RapidOCR:
    global _engine
    if _engine is None:
        from rapidocr_onnxruntime import RapidOCR

        logger.info("loading the RapidOCR models")
        _engine = RapidOCR()
    return _engine


def ocr_image(image: bytes) -> str:
    """The text of an encoded image (PNG, JPEG, TIFF, BMP, WebP...), lines in reading order; '' if none."""
    with _lock:  # one engine per process, and one image at a time on it: OCR is CPU-bound anyway
        result, _ = _get_engine()(image)
    return join_lines(result or [])


def join_lines(boxes: list[list[Any]]) -> str:
    """Group detected boxes ([corners, text, score]) into lines: boxes whose vertical centres fall within
    half a box height of each other are one line, read left to right."""
    items = []
    for corners, text, _score in boxes:
        ys = [float(p[1]) for p in corners]
        xs = [float(p[0]) for p in corners]
        items.append(((min(ys) + max(ys)) / 2, max(max(ys) - min(ys), 1.0), min(xs), str(text).strip()))
    items.sort(key=lambda item: (item[0], item[2]))
    lines: list[list[tuple[float, float, float, str]]] = []
    for item in items:
        if not item[3]:
            continue
        if lines and abs(item[0] - lines[-1][0][0]) <= lines[-1][0][1] / 2:
            lines[-1].append(item)
        else:
            lines.append([item])
    return "\n".join(" ".join(part[3] for part in sorted(line, key=lambda i: i[2])) for line in lines)


def big_enough(width: int, height: int) -> bool:
    """Whether a picture of this size may hold readable text."""
    return min(width, height) >= MIN_SIDE_PX


def ocr_picture(blob: bytes) -> str:
    """OCR a picture embedded in a document; '' for one too small or in a format Pillow cannot open."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(blob)) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return ""  # a vector picture (EMF, WMF, SVG) or a broken one: the document's text still counts
    if not big_enough(width, height):
        return ""
    return ocr_image(blob)
