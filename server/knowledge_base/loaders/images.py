"""Image loader: the text of a photo or scan, read by OCR."""

from __future__ import annotations

import io
from pathlib import Path

from server.knowledge_base.loaders.ocr import ocr_image
from server.knowledge_base.types import LoadedDoc, LoadOptions, loaded_doc

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
# An image narrower or lower than this holds no line of text; refusing it spares loading the OCR models.
MIN_IMAGE_SIDE_PX = 8


def load_image(path: Path, source: str, options: LoadOptions) -> list[LoadedDoc]:
    """One LoadedDoc with the OCR text of the image (every frame of a multi-page TIFF, as pages)."""
    from PIL import Image, UnidentifiedImageError

    from server.knowledge_base.loaders import UnreadableFile

    if not options.ocr:
        raise UnreadableFile(source, "an image can only be indexed by OCR, which is turned off for this upload "
                                     "(enable OCR in the upload options or set kb.ocr: true)")
    try:
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            if min(image.size) < MIN_IMAGE_SIDE_PX:
                raise UnreadableFile(source, f"the image is too small to hold text ({image.size[0]}x{image.size[1]} px)")
            frames = getattr(image, "n_frames", 1)
            blobs = [path.read_bytes()] if frames == 1 else list(_frames(image, frames))
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise UnreadableFile(source, f"not a readable image ({exc})") from exc
    docs = []
    for number, blob in enumerate(blobs, start=1):
        options.ocr_page(number - 1, len(blobs))
        text = ocr_image(blob)
        if text.strip():
            doc = loaded_doc(text, source, page=number) if len(blobs) > 1 else loaded_doc(text, source)
            doc.metadata["ocr"] = True
            docs.append(doc)
    options.ocr_page(len(blobs), len(blobs))
    if not docs:
        raise UnreadableFile(source, "OCR found no text in the image")
    return docs


def _frames(image: object, count: int) -> list[bytes]:
    from PIL import Image

    assert isinstance(image, Image.Image)
    blobs = []
    for index in range(count):
        image.seek(index)
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="PNG")
        blobs.append(buffer.getvalue())
    return blobs
