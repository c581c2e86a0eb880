"""Gaussian-process surrogates and acquisition functions (imports torch and BoTorch)."""
