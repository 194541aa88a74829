"""Frozen, ImageNet-pretrained feature extractors (the "classical" half of the hybrid model).

Each supported architecture is a torchvision classification model with its last layer
(the 1000-way ImageNet classifier) replaced by the identity, as in Mari et al. (2020).
Pretrained weights come through torchvision's own weights API (``ResNet18_Weights`` ...),
so ``"IMAGENET1K_V1"``, ``"DEFAULT"`` and ``"ResNet18_Weights.IMAGENET1K_V1"`` all work; a
local ``.pth`` state dict of the full model works offline.

Two steps, so that a run whose features are all cached never imports torchvision:

* :func:`resolve_backbone` turns (name, weights, transform) into a :class:`BackboneRef`:
  the backbone's *identity* (architecture, weights name or file digest, preprocessing
  description) and feature width, read from the registry below. It needs no torchvision
  and no weights file download. The registry describes each architecture's torchvision
  weights the way torchvision does (``DEFAULT``, each member's preprocessing); a test holds
  it to torchvision's own enums.
* :meth:`BackboneRef.build` builds the frozen :class:`Backbone` (torchvision, weights,
  transform). :func:`create_backbone` does both.

Example:
    >>> from qtransfer.features.backbones import create_backbone, list_backbones, resolve_backbone
    >>> "resnet18" in list_backbones()
    True
    >>> ref = resolve_backbone("mobilenet_v2", "DEFAULT")   # no torchvision, no download
    >>> ref.identity["weights"], ref.num_features
    ('IMAGENET1K_V2', 1280)
    >>> bb = create_backbone("resnet18", weights=None)       # random init, no download
    >>> bb.num_features
    512
    >>> bb.identity["weights"], bb.identity["backbone"]
    ('none', 'resnet18')
"""

from __future__ import annotations

import hashlib
import os
import pickle
import urllib.error
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from qtransfer.collector import paused
from qtransfer.errors import CheckpointError, DownloadError, UsageError
from qtransfer.paths import sha256_file

__all__ = [
    "BACKBONES",
    "DEFAULT_BACKBONE",
    "TRANSFORMS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Backbone",
    "BackboneRef",
    "BackboneSpec",
    "Preprocessing",
    "create_backbone",
    "list_backbones",
    "looks_like_file",
    "published_transform",
    "register_backbone",
    "resolve_backbone",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: accepted values of ``transform=``: the weights' own preprocessing, or Mari et al.'s.
TRANSFORMS = ("weights", "published")

DEFAULT_BACKBONE = "resnet18"


@dataclass(frozen=True)
class Preprocessing:
    """Resize (shorter side), centre crop, ToTensor, ImageNet normalisation: a weights' preprocessing.

    :attr:`text` is the same description torchvision's ``ImageClassification`` preset gives of
    itself (whitespace removed), so it can key caches and checkpoints without torchvision.
    """

    resize: int
    crop: int
    interpolation: str = "BILINEAR"

    @property
    def text(self) -> str:
        return (f"weights:ImageClassification(crop_size=[{self.crop}]resize_size=[{self.resize}]"
                f"mean={_fmt_list(IMAGENET_MEAN)}std={_fmt_list(IMAGENET_STD)}"
                f"interpolation=InterpolationMode.{self.interpolation})")


def _fmt_list(values: tuple[float, ...]) -> str:
    return "[" + ",".join(repr(v) for v in values) + "]"


@dataclass(frozen=True)
class BackboneSpec:
    """How to turn one torchvision classifier into a feature extractor.

    ``classifier`` is the dotted attribute path of the last layer (an ``nn.Linear``), which
    is replaced by ``nn.Identity``; ``num_features`` is that layer's ``in_features``.
    ``weights`` maps each torchvision weights name of the architecture to its preprocessing;
    ``default_weights`` is what ``DEFAULT`` means; ``weights_enum`` the torchvision enum's name.
    ``input_size`` is the smallest input side the architecture accepts (ViT needs exactly it).
    ``cpu_batch`` is how many images one forward pass takes on the CPU
    (:func:`~qtransfer.features.extract.extract_features`): the most, up to 8, whose widest
    activation stays under 32 MiB (:data:`CPU_ACTIVATION_LIMIT`), glibc's ceiling for reusing freed
    memory. A larger block is mapped fresh from the kernel and page-faulted on every pass: on
    2026-11-27 (2 cores; ``python benchmarks/cold_runs.py HEAD --forward-batches 4,6,8``, fresh
    processes, median of 5) MobileNetV2's forward passes (4.6 MiB per image in its widest layer)
    over 244 images took 1.56 s in batches of 8 against 0.78 and 0.77 s in batches of 4 and 6,
    and 0.76 s in batches of 8 with glibc told to keep large blocks (``--malloc-threshold``).
    ``tests/test_backbones.py`` checks every entry against that rule.
    """

    name: str
    classifier: str
    description: str
    num_features: int
    weights_enum: str
    weights: dict[str, Preprocessing] = field(hash=False)
    default_weights: str = "IMAGENET1K_V1"
    input_size: int = 32
    fixed_input: bool = False
    cpu_batch: int = 8
    fold: bool = True  # batch norm folded into the convolutions on the CPU (extract.prepare_forward)


BACKBONES: dict[str, BackboneSpec] = {}
#: the most bytes one activation of a CPU batch should take (see :class:`BackboneSpec`'s ``cpu_batch``)
CPU_ACTIVATION_LIMIT = 32 << 20


def register_backbone(spec: BackboneSpec) -> BackboneSpec:
    """Add ``spec`` to :data:`BACKBONES` (the names ``--backbone`` accepts)."""
    if spec.default_weights not in spec.weights:
        raise ValueError(f"{spec.name}: default weights {spec.default_weights!r} are not among {sorted(spec.weights)}")
    BACKBONES[spec.name] = spec
    return spec


_V1 = {"IMAGENET1K_V1": Preprocessing(256, 224)}
_V1_V2 = {"IMAGENET1K_V1": Preprocessing(256, 224), "IMAGENET1K_V2": Preprocessing(232, 224)}
register_backbone(BackboneSpec("resnet18", "fc", "ResNet-18 (He et al. 2016), 11.7 M params; Mari et al.'s choice",
                               512, "ResNet18_Weights", _V1))
register_backbone(BackboneSpec("resnet34", "fc", "ResNet-34, 21.8 M params", 512, "ResNet34_Weights", _V1))
register_backbone(BackboneSpec("resnet50", "fc", "ResNet-50, 25.6 M params, 2048 features", 2048, "ResNet50_Weights",
                               _V1_V2, "IMAGENET1K_V2"))
register_backbone(BackboneSpec("mobilenet_v2", "classifier.1", "MobileNetV2, 3.5 M params, fast on CPU", 1280,
                               "MobileNet_V2_Weights", _V1_V2, "IMAGENET1K_V2", cpu_batch=6))
register_backbone(BackboneSpec("mobilenet_v3_large", "classifier.3", "MobileNetV3-Large, 5.5 M params, fast on CPU",
                               1280, "MobileNet_V3_Large_Weights", _V1_V2, "IMAGENET1K_V2"))
register_backbone(BackboneSpec("efficientnet_b0", "classifier.1", "EfficientNet-B0, 5.3 M params", 1280,
                               "EfficientNet_B0_Weights", {"IMAGENET1K_V1": Preprocessing(256, 224, "BICUBIC")},
                               cpu_batch=6))
register_backbone(BackboneSpec("convnext_tiny", "classifier.2", "ConvNeXt-Tiny, 28.6 M params", 768,
                               "ConvNeXt_Tiny_Weights", {"IMAGENET1K_V1": Preprocessing(236, 224)}, cpu_batch=6))
register_backbone(BackboneSpec(
    "vit_b_16", "heads.head", "ViT-B/16, 86.6 M params; needs exactly 224x224 input", 768, "ViT_B_16_Weights",
    {"IMAGENET1K_V1": Preprocessing(256, 224), "IMAGENET1K_SWAG_E2E_V1": Preprocessing(384, 384, "BICUBIC"),
     "IMAGENET1K_SWAG_LINEAR_V1": Preprocessing(224, 224, "BICUBIC")},
    input_size=224, fixed_input=True,
))


def list_backbones() -> list[str]:
    """Names accepted by :func:`create_backbone`, default first.

    Example:
        >>> list_backbones()[0]
        'resnet18'
    """
    return [DEFAULT_BACKBONE] + sorted(n for n in BACKBONES if n != DEFAULT_BACKBONE)


def published_transform() -> Callable:
    """Mari et al.'s preprocessing: Resize(256), CenterCrop(224), ToTensor, ImageNet normalisation."""
    from torchvision import transforms as T

    return T.Compose(
        [
            T.Resize(256),
            T.CenterCrop(224),
            T.ToTensor(),
            T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


_PUBLISHED = Preprocessing(256, 224)  # published_transform(), described as the weights' are
_PUBLISHED_TEXT = (
    f"published:Resize(256),CenterCrop(224),ToTensor,Normalize(mean={list(IMAGENET_MEAN)},"
    f"std={list(IMAGENET_STD)})"
)


class Backbone(nn.Module):
    """A frozen feature extractor: images ``(N, 3, H, W)`` -> features ``(N, num_features)``.

    Parameters never require gradients and the module stays in eval mode even if
    ``.train()`` is called (so batch-norm statistics and dropout never change).

    Attributes:
        num_features: width of the features, read from the removed classifier layer.
        transform: PIL image -> normalised ``(3, H, W)`` float tensor.
        identity: ``{"backbone", "weights", "transform"}``; a cache key, stored in checkpoints.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        spec: BackboneSpec,
        num_features: int,
        transform: Callable,
        identity: dict[str, str],
        ref: BackboneRef | None = None,
    ):
        super().__init__()
        self.model = model
        self.spec = spec
        self.num_features = int(num_features)
        self.transform = transform
        self.identity = dict(identity)
        self.ref = ref
        self._digest: str | None = None
        for p in self.model.parameters():
            p.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> "Backbone":  # noqa: ARG002 - frozen on purpose
        """Ignored: a frozen backbone always stays in eval mode."""
        return super().train(False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != 3:
            raise UsageError(
                f"backbone {self.spec.name!r} expects images shaped (N, 3, H, W), got "
                f"{tuple(images.shape)}; apply backbone.transform to each image and stack them"
            )
        return self.model(images)

    def parameter_digest(self) -> str:
        """SHA-256 of every tensor of the state dict (computed once: the parameters are frozen)."""
        if self._digest is None:
            h = hashlib.sha256()
            for name, t in self.model.state_dict().items():
                h.update(name.encode())
                h.update(t.detach().cpu().contiguous().numpy().tobytes())
            self._digest = h.hexdigest()
        return self._digest

    def extra_repr(self) -> str:
        return f"name={self.spec.name!r}, num_features={self.num_features}, weights={self.identity['weights']!r}"


def _spec(name: str) -> BackboneSpec:
    if not isinstance(name, str) or name not in BACKBONES:
        raise UsageError(
            f"unknown backbone {name!r}; choose one of: {', '.join(list_backbones())}"
        )
    return BACKBONES[name]


def looks_like_file(weights: str | Path) -> bool:
    """Whether ``weights`` names a file (a path, or a name ending like a checkpoint) rather than a weights name."""
    if isinstance(weights, Path):
        return True
    s = str(weights)
    return (
        os.sep in s
        or "/" in s
        or s.lower().endswith((".pth", ".pt", ".pth.tar", ".ckpt", ".bin"))
        or Path(s).expanduser().is_file()
    )


def _weights_name(spec: BackboneSpec, weights: str) -> str:
    """The torchvision weights member ``weights`` means: ``DEFAULT``, ``IMAGENET1K_V1``, ``Enum.MEMBER``, any case."""
    text = weights.strip()
    prefix, dot, member = text.rpartition(".")
    if not dot or prefix == spec.weights_enum:  # another enum's member (ResNet34_Weights.X for resnet18) is refused
        name = (member if dot else text).upper()
        if name == "DEFAULT":
            return spec.default_weights
        if name in spec.weights:
            return name
    valid = ", ".join(["DEFAULT", *spec.weights])
    raise UsageError(
        f"unknown weights {weights!r} for backbone {spec.name!r}; choose one of: {valid} "
        f"(or {spec.weights_enum}.<NAME>), a path to a local .pth state dict, or none"
    )


@dataclass(frozen=True)
class BackboneRef:
    """A resolved backbone: what determines its features, known without building it.

    ``weights`` is ``"none"``, a torchvision weights name, or the absolute path of a state-dict
    file; ``weights_id`` is what the identity records (the name, ``"none"``, or
    ``"file:<sha256 of the file>"``, so a moved file is still recognised).
    """

    spec: BackboneSpec
    weights: str
    weights_id: str
    transform: str
    preprocessing: Preprocessing | None  # None: the published transform

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def num_features(self) -> int:
        return self.spec.num_features

    @property
    def identity(self) -> dict[str, str]:
        """``{"backbone", "weights", "transform"}``: a cache key, stored in checkpoints."""
        text = self.preprocessing.text if self.preprocessing is not None else _PUBLISHED_TEXT
        return {"backbone": self.spec.name, "weights": self.weights_id, "transform": text}

    def image_preprocess(self):
        """The :meth:`build` backbone's transform, bit for bit, without torchvision: an
        :class:`~qtransfer.features.preprocess.ImagePreprocess`."""
        from qtransfer.features.preprocess import ImagePreprocess

        p = self.preprocessing if self.preprocessing is not None else _PUBLISHED
        return ImagePreprocess(p.resize, p.crop, p.interpolation, IMAGENET_MEAN, IMAGENET_STD)

    def build(self, device: str | torch.device = "cpu") -> "Backbone":
        """The frozen :class:`Backbone` (imports torchvision; may download named weights).

        Random weights (``"none"``) are drawn from a fixed seed, so every process builds the
        same backbone whatever the global random state. Python's cyclic collector is paused
        meanwhile (:func:`qtransfer.collector.paused`: importing torchvision otherwise costs
        full collections over the whole heap).
        """
        with paused():
            return self._build(device)

    def _build(self, device: str | torch.device) -> "Backbone":
        from torchvision.models import get_model

        spec = self.spec
        member = None
        if self.weights == "none":
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                model = get_model(spec.name, weights=None)
        elif self.weights_id.startswith("file:"):
            model = _load_file(spec, Path(self.weights))
        else:
            member = _weights_enum(spec)[self.weights]
            model = _build_pretrained(spec, member)
        if self.transform == "weights":
            tf = (member if member is not None else _weights_enum(spec).DEFAULT).transforms()
        else:
            tf = published_transform()
        if _remove_classifier(model, spec) != spec.num_features:  # pragma: no cover - guards the registry
            raise TypeError(f"{spec.name}: the registry's num_features {spec.num_features} is not the classifier's input")
        return Backbone(model, spec=spec, num_features=spec.num_features, transform=tf, identity=self.identity,
                        ref=self).to(device)


def _weights_enum(spec: BackboneSpec):
    from torchvision.models import get_model_weights

    return get_model_weights(spec.name)


def resolve_backbone(
    name: str = DEFAULT_BACKBONE,
    weights: str | Path | None = "DEFAULT",
    *,
    transform: str | None = None,
) -> BackboneRef:
    """Resolve a backbone's identity without building it (no torchvision import, no download).

    Arguments as :func:`create_backbone`. A weights file is hashed (its identity is its content).

    Example:
        >>> ref = resolve_backbone("resnet18", "ResNet18_Weights.IMAGENET1K_V1")
        >>> ref.identity["weights"], ref.identity["transform"][:40]
        ('IMAGENET1K_V1', 'weights:ImageClassification(crop_size=[2')

    ``timm:NAME`` resolves a timm model (:func:`qtransfer.features.timm_backbones.resolve_timm`).
    """
    if isinstance(name, str) and name.startswith("timm:"):
        from qtransfer.features.timm_backbones import resolve_timm

        if transform is not None:
            raise UsageError(f"{name} preprocesses as its timm data config says; leave out transform ({transform!r})")
        return resolve_timm(name[len("timm:"):], weights)
    spec = _spec(name)
    if transform is not None and transform not in TRANSFORMS:
        raise UsageError(f"unknown transform {transform!r}; choose one of: {', '.join(TRANSFORMS)}")
    named = None
    if weights is None or (isinstance(weights, str) and weights.strip().lower() == "none"):
        resolved, weights_id = "none", "none"
    elif looks_like_file(weights):
        path = Path(weights).expanduser()
        if not path.is_file():
            raise UsageError(
                f"weights file {path} does not exist; pass the path of a .pth state dict of a "
                f"torchvision {spec.name}, a weights name, or none"
            )
        resolved, weights_id = str(path.absolute()), f"file:{sha256_file(path)}"
    elif isinstance(weights, str):
        named = resolved = weights_id = _weights_name(spec, weights)
    else:
        raise UsageError(
            f"weights must be a name, a path or None, got {type(weights).__name__} {weights!r}"
        )
    if transform is None:
        transform = "weights" if named is not None else "published"
    preprocessing = spec.weights[named or spec.default_weights] if transform == "weights" else None
    return BackboneRef(spec, resolved, weights_id, transform, preprocessing)


def _checkpoint_path(weights_member) -> Path:
    filename = os.path.basename(weights_member.url)
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def _build_pretrained(spec: BackboneSpec, member) -> nn.Module:
    from torchvision.models import get_model

    target = _checkpoint_path(member)
    fix = (
        f"place the file {target.name} (from {member.url}) at {target}, "
        f"or pass --weights FILE with a local copy, or choose a different backbone "
        f"(--backbone NAME) or --weights none"
    )
    try:
        return get_model(spec.name, weights=member)
    except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
        raise DownloadError(
            f"cannot download the {spec.name} {member.name} weights ({e}); "
            f"without network access, {fix}"
        ) from None
    except RuntimeError as e:
        if "hash" in str(e).lower():
            raise DownloadError(
                f"the {spec.name} {member.name} weights file {target} does not match its checksum "
                f"({e}); delete it and retry, or {fix}"
            ) from None
        if target.exists():
            raise _unreadable(spec, member, target, e, fix) from None
        raise
    except (pickle.UnpicklingError, EOFError, ValueError) as e:
        if target.exists():
            raise _unreadable(spec, member, target, e, fix) from None
        raise
    except OSError as e:
        raise DownloadError(
            f"cannot fetch the {spec.name} {member.name} weights into {target} ({e}); {fix}"
        ) from None


def _unreadable(spec: BackboneSpec, member, target: Path, e: BaseException, fix: str) -> DownloadError:
    return DownloadError(
        f"the cached {spec.name} {member.name} weights file {target} cannot be loaded "
        f"({type(e).__name__}: {e}); it is probably a partial or damaged copy: delete it and "
        f"retry, or {fix}"
    )


def _load_file(spec: BackboneSpec, path: Path) -> nn.Module:
    from torchvision.models import get_model

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling refused, truncated zip, not a torch file ...
        raise CheckpointError(
            f"weights file {path} cannot be read as a PyTorch state dict ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}); pass a .pth file saved with "
            f"torch.save(model.state_dict(), path)"
        ) from None
    if isinstance(state, dict):
        for key in ("state_dict", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(
            f"weights file {path} does not hold a state dict (name -> tensor); pass a .pth file "
            f"saved with torch.save(model.state_dict(), path)"
        )
    model = get_model(spec.name, weights=None)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        expected = set(model.state_dict())
        got = set(state)
        missing = sorted(expected - got)
        unexpected = sorted(got - expected)
        detail = []
        if missing:
            detail.append(f"{len(missing)} missing keys (e.g. {', '.join(missing[:3])})")
        if unexpected:
            detail.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:3])})")
        if not detail:
            first = str(e).strip().splitlines()
            detail.append(first[-1].strip() if first else "shape mismatch")
        raise CheckpointError(
            f"weights file {path} does not match backbone {spec.name!r}: {'; '.join(detail)}. "
            f"Pass the backbone these weights belong to (--backbone), or weights for {spec.name}"
        ) from None
    return model


def _remove_classifier(model: nn.Module, spec: BackboneSpec) -> int:
    parent_path, _, leaf = spec.classifier.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    layer = parent.get_submodule(leaf) if leaf.isdigit() else getattr(parent, leaf)
    if not isinstance(layer, nn.Linear):  # pragma: no cover - guards the registry
        raise TypeError(f"{spec.name}: {spec.classifier} is {type(layer).__name__}, not nn.Linear")
    n = layer.in_features
    if leaf.isdigit():
        parent[int(leaf)] = nn.Identity()
    else:
        setattr(parent, leaf, nn.Identity())
    return n


def create_backbone(
    name: str = DEFAULT_BACKBONE,
    weights: str | Path | None = "DEFAULT",
    *,
    transform: str | None = None,
    device: str | torch.device = "cpu",
) -> Backbone:
    """Build a frozen feature extractor: :func:`resolve_backbone`, then :meth:`BackboneRef.build`.

    Args:
        name: one of :func:`list_backbones`.
        weights: ``None`` / ``"none"`` (random init from a fixed seed), a weights name
            (``"DEFAULT"``, ``"IMAGENET1K_V1"``, ``"ResNet18_Weights.IMAGENET1K_V1"``)
            downloaded through torchvision into ``torch.hub.get_dir()/checkpoints``, or a path
            to a local ``.pth`` state dict of the full torchvision model.
        transform: ``"weights"`` (the weights' own preprocessing), ``"published"``
            (Resize(256), CenterCrop(224), ToTensor, ImageNet normalisation) or ``None``:
            the weights' own for named weights, the published one otherwise.
        device: where the model lives.

    Raises:
        UsageError: unknown name, weights name or transform; a missing weights file.
        DownloadError: the weights could not be downloaded (says where to put the file).
        CheckpointError: a weights file that is unreadable or belongs to another model.

    Example:
        >>> bb = create_backbone("mobilenet_v2", weights=None)
        >>> bb.num_features, bb.identity["transform"].split(":")[0]
        (1280, 'published')
    """
    return resolve_backbone(name, weights, transform=transform).build(device)
