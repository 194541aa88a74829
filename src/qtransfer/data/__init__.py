"""Finding and checking the images: class folders, splits, the Hymenoptera download.

* :mod:`~qtransfer.data.discover`: a data root -> classes and splits of usable images;
* :mod:`~qtransfer.data.images`: opening any image file as RGB, or a reason it cannot be used;
* :mod:`~qtransfer.data.hymenoptera`: the published data set, downloaded and verified.
"""

from qtransfer._lazy import lazy_getattr

_EXPORTS = {
    "ImageData": "discover", "Sample": "discover", "Skipped": "discover", "discover": "discover",
    "stratified_split": "discover", "IMAGE_EXTENSIONS": "images", "open_image_rgb": "images",
    "ensure_hymenoptera": "hymenoptera",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_getattr(__name__, _EXPORTS)
