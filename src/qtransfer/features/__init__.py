"""Images -> frozen backbone -> cached feature vectors.

* :mod:`~qtransfer.features.backbones`: the registry of torchvision backbones, resolved
  without torchvision (:func:`resolve_backbone`) and built on demand (:func:`create_backbone`);
* :mod:`~qtransfer.features.extract`: :func:`extract_features`, one backbone pass per image
  not yet cached;
* :mod:`~qtransfer.features.cache`: the checksummed on-disk :class:`FeatureCache`.
"""

from qtransfer._lazy import lazy_getattr

_EXPORTS = {
    "BACKBONES": "backbones", "Backbone": "backbones", "BackboneRef": "backbones", "BackboneSpec": "backbones",
    "create_backbone": "backbones", "list_backbones": "backbones", "register_backbone": "backbones",
    "resolve_backbone": "backbones", "Extraction": "extract", "extract_features": "extract",
    "CacheEntry": "cache", "FeatureCache": "cache",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_getattr(__name__, _EXPORTS)
