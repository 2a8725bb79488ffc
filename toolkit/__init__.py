"""ppc-llm: render, cross-compile, convert and verify llama2.c-style inference for PowerPC."""

__version__ = "0.1.0"
