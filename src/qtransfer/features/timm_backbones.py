"""``--backbone timm:NAME``: any image model of ``timm`` (``pip install 'qtransfer[timm]'``) as the frozen backbone.

:func:`resolve_timm` gives a :class:`TimmRef`, a :class:`~qtransfer.features.backbones.BackboneRef`
whose identity (``timm:NAME``, the weights, the preprocessing) and feature width come from the
model's own description: timm builds the architecture on PyTorch's ``meta`` device (no memory, no
weights) and its data config (``timm.data.resolve_data_config``) gives the preprocessing:
Resize(floor(size / crop_pct)) with the model's interpolation, CenterCrop(size), its mean and std,
done bit for bit by :class:`~qtransfer.features.preprocess.ImagePreprocess` (held to
``timm.data.create_transform`` by ``tests/test_timm.py``). The model runs with ``num_classes=0``:
its pooled features (``num_features`` wide), as timm's ``forward_head(pre_logits=True)`` gives.

Weights: ``none`` (random, from a fixed seed), a file (a state dict of the model, ``.pth``/``.pt``/
``.bin`` or ``.safetensors``; its identity is its SHA-256), or ``DEFAULT`` / a pretrained tag (e.g.
``a1_in1k``) from timm's and Hugging Face's local cache. Offline with an empty cache, the error
(exit code 4) names the file and where to place it.

Example:
    >>> ref = resolve_timm("test_convnext", "none")      # doctest: +SKIP
    >>> ref.identity["backbone"], ref.num_features        # doctest: +SKIP
    ('timm:test_convnext', 64)
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import torch

from qtransfer.collector import paused
from qtransfer.errors import CheckpointError, DownloadError, UsageError
from qtransfer.features.backbones import Backbone, BackboneRef, BackboneSpec, looks_like_file
from qtransfer.paths import sha256_file

__all__ = ["PREFIX", "TimmRef", "resolve_timm"]

#: ``--backbone`` values that start with this name a timm model
PREFIX = "timm:"
#: images per forward pass on the CPU (timm models are not measured one by one as the registry's are)
TIMM_CPU_BATCH = 8


def _timm():
    try:
        import timm
    except ImportError:
        raise ImportError("--backbone timm:NAME needs timm: pip install 'qtransfer[timm]'") from None
    return timm


@dataclass(frozen=True)
class TimmRef(BackboneRef):
    """A resolved timm backbone (see the module); ``model_name`` is timm's name, with the pretrained
    tag when one was asked for (``NAME.TAG``)."""

    model_name: str = ""
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    pretrained_file: str = ""  # where timm would read pretrained weights from (for the offline message)

    @property
    def identity(self) -> dict[str, str]:
        p = self.preprocessing
        text = (f"timm:Resize({p.resize},{p.interpolation.lower()}),CenterCrop({p.crop}),"
                f"mean={list(self.mean)},std={list(self.std)}")
        return {"backbone": self.spec.name, "weights": self.weights_id, "transform": text}

    def image_preprocess(self):
        from qtransfer.features.preprocess import ImagePreprocess

        p = self.preprocessing
        return ImagePreprocess(p.resize, p.crop, p.interpolation, self.mean, self.std)

    def build(self, device: str | torch.device = "cpu") -> Backbone:
        """The frozen timm model (``num_classes=0``) with its weights, as a :class:`Backbone`."""
        with paused():
            model = self._model()
        return Backbone(model, spec=self.spec, num_features=self.spec.num_features, transform=self.image_preprocess(),
                        identity=self.identity, ref=self).to(device)

    def _model(self) -> torch.nn.Module:
        timm = _timm()
        name = self.model_name
        if self.weights == "none":
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                return timm.create_model(name, pretrained=False, num_classes=0)
        if self.weights_id.startswith("file:"):
            return _load_file(timm, name, Path(self.weights))
        try:
            return timm.create_model(name, pretrained=True, num_classes=0)
        except Exception as e:  # huggingface_hub's and urllib's errors: no network, nothing in the cache
            first = (str(e).strip().splitlines() or [type(e).__name__])[0].split(". ")[0]
            raise DownloadError(
                f"the pretrained weights of timm's {name} are not in the local cache, {self.pretrained_file}, and "
                f"could not be downloaded ({first}). Fetch them once where there is network (python -c \"import timm; "
                f"timm.create_model('{name}', pretrained=True)\" puts them there), or place that file anywhere and "
                f"pass --weights FILE (a state dict of timm's {name.partition('.')[0]}, .safetensors or .pth)"
            ) from None


def _read_state_dict(path: Path) -> dict:
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CheckpointError(f"weights file {path} holds a {type(state).__name__}, not a state dict")
    return state


def _load_file(timm, name: str, path: Path) -> torch.nn.Module:
    """The model with the state dict in ``path``: of the whole model (classifier included) or without classifier."""
    try:
        state = _read_state_dict(path)
    except CheckpointError:
        raise
    except Exception as e:  # unreadable, truncated, not a checkpoint
        raise CheckpointError(f"weights file {path} cannot be read as a state dict: {e}") from None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = timm.create_model(name, pretrained=False)
    try:
        model.load_state_dict(state, strict=True)
        model.reset_classifier(0)
        return model
    except RuntimeError:
        pass
    model.reset_classifier(0)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        detail = str(e).strip().splitlines()[0]
        raise CheckpointError(f"weights file {path} is not a state dict of timm's {name} ({detail})") from None
    return model


def _pretrained_file(cfg: dict) -> str:
    """Where timm reads a pretrained model's weights from: the Hugging Face cache, else torch hub's."""
    hub_id = cfg.get("hf_hub_id")
    if hub_id:
        try:
            from huggingface_hub.constants import HF_HUB_CACHE
        except ImportError:  # pragma: no cover - timm depends on huggingface_hub
            HF_HUB_CACHE = os.path.expanduser("~/.cache/huggingface/hub")
        repo = "models--" + hub_id.replace("/", "--")
        return f"model.safetensors of the Hugging Face repository {hub_id} under {Path(HF_HUB_CACHE) / repo}"
    url = cfg.get("url") or ""
    if url:
        return str(Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url))
    return "(timm lists no pretrained weights for this model)"


def resolve_timm(name: str, weights: str | os.PathLike | None = "DEFAULT") -> TimmRef:
    """``timm:NAME`` (``name`` without the prefix) and its weights, resolved without loading any weights.

    Raises :class:`UsageError` for an unknown model, an unsupported data config or a missing weights file.
    """
    from qtransfer.features.backbones import Preprocessing

    timm = _timm()
    base, _, tag = name.partition(".")
    if not timm.is_model(base):
        close = timm.list_models(f"*{base}*")[:5]
        raise UsageError(f"timm has no model {base!r}" + (f"; similar: {', '.join(close)}" if close else "")
                         + " (timm.list_models() lists them)")
    if weights is None or (isinstance(weights, str) and weights.strip().lower() == "none"):
        resolved, weights_id = "none", f"none:seed=0,timm={metadata.version('timm')},torch={metadata.version('torch')}"
        model_name = base
    elif looks_like_file(weights) and not (isinstance(weights, str) and weights.upper() == "DEFAULT"):
        path = Path(weights).expanduser()
        if not path.is_file():
            raise UsageError(f"weights file {path} does not exist; pass a state dict of timm's {base} "
                             f"(.pth or .safetensors), a pretrained tag, DEFAULT or none")
        resolved, weights_id, model_name = str(path.resolve()), f"file:{sha256_file(path)}", base
    else:
        text = str(weights).strip()
        model_name = name if text.upper() == "DEFAULT" else f"{base}.{text}"
        resolved = "pretrained"
    with torch.device("meta"):
        try:
            meta = timm.create_model(model_name, pretrained=False, num_classes=0)
        except RuntimeError as e:  # an unknown pretrained tag
            raise UsageError(f"timm: {str(e).strip().splitlines()[0]}") from None
    cfg = dict(meta.pretrained_cfg)
    if resolved == "pretrained":
        weights_id = f"timm:{cfg.get('architecture', base)}.{cfg.get('tag') or 'default'}"
        model_name = f"{cfg.get('architecture', base)}.{cfg['tag']}" if cfg.get("tag") else base
    data = timm.data.resolve_data_config({}, model=meta)
    _, height, width = data["input_size"]
    if data.get("crop_mode", "center") != "center" or height != width:
        raise UsageError(f"timm's {base} preprocesses with crop_mode {data.get('crop_mode')!r} at {height}x{width}; "
                         f"qtransfer supports centre crops of square inputs")
    interpolation = str(data.get("interpolation", "bilinear")).upper()
    crop = int(height)
    resize = math.floor(crop / float(data.get("crop_pct") or 0.875))
    spec = BackboneSpec(name=PREFIX + base, classifier="", description=f"timm model {base}",
                        num_features=int(meta.num_features), weights_enum="", weights={}, default_weights="",
                        input_size=crop, cpu_batch=TIMM_CPU_BATCH, fold=False)
    return TimmRef(spec, resolved, weights_id, "timm", Preprocessing(resize, crop, interpolation), model_name=model_name,
                   mean=tuple(float(v) for v in data["mean"]), std=tuple(float(v) for v in data["std"]),
                   pretrained_file=_pretrained_file(cfg))
