"""Pre-training the Adaptor on cached features."""
