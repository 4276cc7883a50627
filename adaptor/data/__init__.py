"""Dataset readers, manifests, image decoding and report text handling."""
