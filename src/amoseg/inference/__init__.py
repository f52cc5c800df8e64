"""Inference: sliding-window prediction in plan space, and export back onto the input's grid."""
