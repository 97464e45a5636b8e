"""ShapesWorld: the embedded procedural multimodal dataset."""
