"""Hugging Face checkpoint interop."""
