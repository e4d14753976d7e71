"""Tests of the shim preloaded into PyTorch on a real NVIDIA GPU (marker ``gpu``; skipped without one)."""
