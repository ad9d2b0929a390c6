"""Features of frozen backbones: extraction, the on-disk cache, feature modes, layers, and a backbone's description."""

from .cache import FeatureCache, cache_key
from .extract import FeatureSet, build_transform, extract

__all__ = ["FeatureCache", "FeatureSet", "build_transform", "cache_key", "extract"]
