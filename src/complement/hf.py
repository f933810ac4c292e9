"""Hugging Face Transformers front end: ``from complement.hf import CotTrainer``."""

from .training.hf_trainer import CotTrainer

__all__ = ["CotTrainer"]
