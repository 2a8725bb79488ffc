"""`python -m toolkit` is `ppc-llm`."""

from .entry import main

main()
