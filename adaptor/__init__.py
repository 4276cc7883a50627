"""Adaptor: align frozen image and text encoders with a small trainable module, on cached features."""

__version__ = "0.1.0"
