"""The Adaptor, its contrastive loss and the downstream heads."""
