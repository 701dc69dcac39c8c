"""Explanation methods. Each takes a model with its spec and one preprocessed image, and returns maps."""
