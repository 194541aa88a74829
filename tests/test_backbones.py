"""Backbone registry, weights handling (names, files, offline downloads) and transforms."""

from __future__ import annotations

import hashlib
import shutil
import urllib.error

import pytest
import torch
from PIL import Image

from qtransfer.features.backbones import (
    BACKBONES,
    TRANSFORMS,
    Backbone,
    BackboneSpec,
    create_backbone,
    list_backbones,
    published_transform,
    resolve_backbone,
)
from qtransfer.errors import CheckpointError, DownloadError, UsageError
from qtransfer.features.extract import prepare_forward

REQUIRED = {
    "resnet18",
    "resnet34",
    "resnet50",
    "mobilenet_v2",
    "mobilenet_v3_large",
    "efficientnet_b0",
    "convnext_tiny",
    "vit_b_16",
}


def test_registry_lists_required_architectures_default_first():
    names = list_backbones()
    assert names[0] == "resnet18"
    assert REQUIRED <= set(names)
    assert set(names) == set(BACKBONES)
    for name, spec in BACKBONES.items():
        assert isinstance(spec, BackboneSpec) and spec.name == name and spec.description
    with pytest.raises(Exception):
        BACKBONES["resnet18"].name = "x"  # frozen dataclass


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_every_backbone_builds_frozen_and_reports_its_feature_width(name):
    bb = create_backbone(name, weights=None)
    assert isinstance(bb, Backbone)
    side = bb.spec.input_size if bb.spec.fixed_input else 64
    bb.train()  # must be ignored
    assert not bb.training and not any(m.training for m in bb.modules())
    assert not any(p.requires_grad for p in bb.parameters())
    x = torch.randn(2, 3, side, side)
    with torch.inference_mode():
        out = bb(x)
    assert out.shape == (2, bb.num_features)  # read from the removed layer, checked by a forward pass
    assert torch.isfinite(out).all()
    forward, convert = prepare_forward(bb)  # the extraction path traces and folds every backbone
    with torch.inference_mode():
        fast = forward(convert(x))
    torch.testing.assert_close(fast.reshape(out.shape), out, atol=1e-4, rtol=1e-4)
    assert bb.identity == {"backbone": name, "weights": "none", "transform": bb.identity["transform"]}
    assert bb.identity["transform"].startswith("published:")


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_cpu_batch_is_the_most_images_whose_widest_activation_fits_the_limit(name):
    """The registry's cpu_batch: up to 8 images, each activation of the batch under CPU_ACTIVATION_LIMIT
    (glibc maps larger blocks fresh on every pass), measured here by a 224x224 forward pass."""
    from qtransfer.features.backbones import CPU_ACTIVATION_LIMIT

    bb = create_backbone(name, weights=None)
    widest = 0

    def record(module, inputs, output):
        nonlocal widest
        if isinstance(output, torch.Tensor):
            widest = max(widest, output.numel() * output.element_size())

    hooks = [m.register_forward_hook(record) for m in bb.model.modules()]
    with torch.inference_mode():
        bb(torch.zeros(1, 3, 224, 224))
    for hook in hooks:
        hook.remove()
    assert bb.spec.cpu_batch == max(b for b in range(1, 9) if b * widest <= CPU_ACTIVATION_LIMIT)


def test_known_feature_widths_match_forward_pass():
    for name, width in (("resnet18", 512), ("mobilenet_v2", 1280)):
        bb = create_backbone(name, weights=None)
        with torch.inference_mode():
            assert bb(torch.randn(1, 3, 32, 32)).shape[1] == bb.num_features == width


def test_frozen_backbone_gets_no_gradient_and_batchnorm_stats_stay():
    bb = create_backbone("resnet18", weights=None)
    before = bb.model.bn1.running_mean.clone()
    bb.train(True)
    x = torch.randn(4, 3, 32, 32, requires_grad=True)
    bb(x).sum().backward()  # gradients flow to the input, not to the frozen weights
    assert x.grad is not None
    assert all(p.grad is None for p in bb.parameters())
    assert torch.equal(bb.model.bn1.running_mean, before)


def test_forward_rejects_wrong_shape_with_a_hint():
    bb = create_backbone("resnet18", weights=None)
    with pytest.raises(UsageError, match=r"\(N, 3, H, W\).*transform"):
        bb(torch.randn(3, 32, 32))


def test_unknown_backbone_lists_known_names():
    with pytest.raises(UsageError) as e:
        create_backbone("resnet9000", weights=None)
    for name in REQUIRED:
        assert name in str(e.value)
    assert e.value.exit_code == 2


@pytest.mark.parametrize("bad", ["IMAGENET1K_V9", "ResNet34_Weights.IMAGENET1K_V1", "nonsense"])
def test_unknown_weights_name_lists_valid_ones(bad):
    with pytest.raises(UsageError) as e:
        create_backbone("resnet18", weights=bad)
    msg = str(e.value)
    assert bad in msg and "IMAGENET1K_V1" in msg and "DEFAULT" in msg


def test_unknown_transform_is_a_usage_error():
    with pytest.raises(UsageError, match="published"):
        create_backbone("resnet18", weights=None, transform="imagenet")
    assert TRANSFORMS == ("weights", "published")


def test_transform_choice_and_identity_text():
    none_default = create_backbone("resnet18", weights=None)
    assert none_default.identity["transform"].startswith("published:")
    from_meta = create_backbone("resnet18", weights=None, transform="weights")
    # the architecture's DEFAULT weights' transforms, no download needed
    assert from_meta.identity["transform"].startswith("weights:ImageClassification(")
    assert "crop_size=[224]" in from_meta.identity["transform"]
    img = Image.new("RGB", (300, 200), (10, 200, 30))
    assert from_meta.transform(img).shape == (3, 224, 224)
    # stable text: the same for two builds
    again = create_backbone("resnet18", weights=None, transform="weights")
    assert again.identity == from_meta.identity


def test_published_transform_is_resize256_centercrop224_normalise():
    from torchvision import transforms as T
    from torchvision.transforms import functional as F

    tf = published_transform()
    kinds = [type(t) for t in tf.transforms]
    assert kinds == [T.Resize, T.CenterCrop, T.ToTensor, T.Normalize]
    assert tf.transforms[0].size == 256
    assert list(tf.transforms[1].size) == [224, 224]
    assert tuple(tf.transforms[3].mean) == (0.485, 0.456, 0.406)
    assert tuple(tf.transforms[3].std) == (0.229, 0.224, 0.225)
    g = torch.Generator().manual_seed(0)
    img = Image.fromarray(torch.randint(0, 256, (180, 240, 3), dtype=torch.uint8, generator=g).numpy())
    out = tf(img)
    assert out.shape == (3, 224, 224)
    manual = F.center_crop(F.resize(img, 256), 224)
    manual = (F.to_tensor(manual) - torch.tensor([0.485, 0.456, 0.406])[:, None, None]) / torch.tensor(
        [0.229, 0.224, 0.225]
    )[:, None, None]
    torch.testing.assert_close(out, manual, atol=1e-6, rtol=0)


# --------------------------------------------------------------------- local weights files


def test_local_pth_gives_torchvision_features(mobilenet_weights):
    from torchvision.models import mobilenet_v2

    bb = create_backbone("mobilenet_v2", weights=mobilenet_weights)
    sha = hashlib.sha256(mobilenet_weights.read_bytes()).hexdigest()
    assert bb.identity["weights"] == f"file:{sha}"
    assert bb.identity["transform"].startswith("published:")  # file weights -> Mari et al.'s
    assert bb.num_features == 1280

    ref = mobilenet_v2(weights=None)
    ref.load_state_dict(torch.load(mobilenet_weights, weights_only=True))
    ref.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        ours = bb(x)
        pooled = torch.nn.functional.adaptive_avg_pool2d(ref.features(x), 1).flatten(1)
        logits = ref(x)
    torch.testing.assert_close(ours, pooled, atol=1e-6, rtol=0)
    # the removed layer applied to our features gives back the full classifier's logits
    with torch.inference_mode():
        torch.testing.assert_close(ref.classifier(ours), logits, atol=1e-5, rtol=0)


def test_local_pth_given_as_string(mobilenet_weights):
    bb = create_backbone("mobilenet_v2", weights=str(mobilenet_weights), transform="weights")
    assert bb.identity["weights"].startswith("file:")
    assert bb.identity["transform"].startswith("weights:ImageClassification(")


def test_mismatched_weights_file_names_file_and_fix(mobilenet_weights):
    with pytest.raises(CheckpointError) as e:
        create_backbone("resnet18", weights=mobilenet_weights)
    msg = str(e.value)
    assert str(mobilenet_weights) in msg and "resnet18" in msg
    assert "missing keys" in msg and "unexpected keys" in msg and "--backbone" in msg


def test_weights_path_is_named_as_given_through_a_symlink(mobilenet_weights, tmp_path):
    # a checkout whose ../shared is a symlink: the message names the path the user typed, not its target
    (tmp_path / "linked").symlink_to(mobilenet_weights.parent, target_is_directory=True)
    given = tmp_path / "linked" / mobilenet_weights.name
    with pytest.raises(CheckpointError) as e:
        create_backbone("resnet18", weights=given)
    assert str(given) in str(e.value)


def test_missing_and_unreadable_weights_files(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        create_backbone("resnet18", weights=tmp_path / "nope.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"this is not a torch file")
    with pytest.raises(CheckpointError, match="junk.pth"):
        create_backbone("resnet18", weights=junk)
    not_state = tmp_path / "list.pth"
    torch.save([1, 2, 3], not_state)
    with pytest.raises(CheckpointError, match="state dict"):
        create_backbone("resnet18", weights=not_state)


def test_shape_mismatch_is_a_checkpoint_error(tmp_path):
    state = create_backbone("resnet18", weights=None).model.state_dict()
    # put the classifier back but with the wrong width
    state["fc.weight"] = torch.zeros(10, 512)
    state["fc.bias"] = torch.zeros(10)
    bad = tmp_path / "resnet18-10classes.pth"
    torch.save(state, bad)
    with pytest.raises(CheckpointError, match="resnet18-10classes.pth"):
        create_backbone("resnet18", weights=bad)


# --------------------------------------------------------------------- torchvision downloads


@pytest.fixture
def offline_torch_home(tmp_path, monkeypatch):
    """A fresh, empty TORCH_HOME; network access through torch.hub fails like offline."""
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    import torch.hub

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known (test: offline)")

    monkeypatch.setattr(torch.hub, "urlopen", no_network)
    return home


def test_offline_download_says_which_file_to_put_where(offline_torch_home):
    with pytest.raises(DownloadError) as e:
        create_backbone("resnet18", weights="DEFAULT")
    msg = str(e.value)
    target = offline_torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert str(target) in msg
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in msg
    assert "--weights FILE" in msg and "--backbone" in msg
    assert e.value.exit_code == 4


@pytest.mark.parametrize("weights", ["IMAGENET1K_V1", "MobileNet_V2_Weights.IMAGENET1K_V1", "imagenet1k_v1"])
def test_weights_from_hub_checkpoints_dir(offline_torch_home, mobilenet_weights, weights):
    ckpt = offline_torch_home / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    shutil.copy(mobilenet_weights, ckpt / "mobilenet_v2-b0353104.pth")
    bb = create_backbone("mobilenet_v2", weights=weights)
    assert bb.identity["weights"] == "IMAGENET1K_V1"
    assert bb.identity["transform"].startswith("weights:ImageClassification(")
    from_file = create_backbone("mobilenet_v2", weights=mobilenet_weights)
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(bb(x), from_file(x), atol=0, rtol=0)


def test_corrupt_hub_checkpoint_is_a_download_error(offline_torch_home):
    ckpt = offline_torch_home / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    (ckpt / "mobilenet_v2-b0353104.pth").write_bytes(b"truncated")
    with pytest.raises(DownloadError, match="mobilenet_v2-b0353104.pth"):
        create_backbone("mobilenet_v2", weights="IMAGENET1K_V1")


# --------------------------------------------------------------------- the registry without torchvision


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_registry_describes_torchvision_weights_exactly(name):
    """What resolve_backbone knows without torchvision equals torchvision's own weights enum."""
    import re

    from torchvision.models import get_model_weights

    spec = BACKBONES[name]
    enum = get_model_weights(name)
    assert spec.weights_enum == enum.__name__
    assert spec.default_weights == enum.DEFAULT.name
    assert set(spec.weights) == set(enum.__members__) - {"DEFAULT"}
    for member in enum:
        ref = resolve_backbone(name, member.name)
        assert ref.identity["transform"] == "weights:" + re.sub(r"\s+", "", repr(member.transforms()))
        assert ref.identity["weights"] == member.name


def test_resolving_names_files_and_none():
    assert resolve_backbone("resnet50", "DEFAULT").weights_id == "IMAGENET1K_V2"
    assert resolve_backbone("resnet50", "ResNet50_Weights.imagenet1k_v1").weights_id == "IMAGENET1K_V1"
    assert resolve_backbone("resnet18", None).identity == create_backbone("resnet18", None).identity
    with pytest.raises(UsageError, match="ResNet34_Weights.IMAGENET1K_V1"):
        resolve_backbone("resnet18", "ResNet34_Weights.IMAGENET1K_V1")
    with pytest.raises(UsageError, match="DEFAULT, IMAGENET1K_V1"):
        resolve_backbone("resnet18", "IMAGENET1K_V9")


def test_resolving_imports_no_torchvision(mobilenet_weights):
    """Identity and feature width come from the registry: no torchvision import, no weights load."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from qtransfer.features.backbones import resolve_backbone\n"
        f"r = resolve_backbone('mobilenet_v2', {str(mobilenet_weights)!r})\n"
        "n = resolve_backbone('resnet18', 'DEFAULT')\n"
        "print(r.num_features, r.identity['weights'][:5], n.identity['weights'], 'torchvision' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["1280", "file:", "IMAGENET1K_V1", "False"]
