"""Hugging Face Transformers front end: ``from complement.hf import CotTrainer``.

Needs the ``text`` extra (``pip install "complement[text]"``: Transformers, Accelerate, tokenizers,
safetensors); without it, importing this module raises a one-line ``ModuleNotFoundError`` that says so."""

from ._extras import missing_extra

try:
    from .training.hf_trainer import CotTrainer
except ModuleNotFoundError as error:
    raise missing_extra(error, "text", __name__) from None

__all__ = ["CotTrainer"]
