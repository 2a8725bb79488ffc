"""`python -m toolkit.fuzz`: the long fuzzing run of the C loaders (README, "Reliability").

    python -m toolkit.fuzz --runs 1000000                  # every loader, a million executions each
    python -m toolkit.fuzz --loader bpe --runs 1000000     # one loader: model tokenizer prompt bpe chat bpe_prompt
    python -m toolkit.fuzz --loader model --max-time 3600  # one loader, for an hour

Keeps the corpus and any crash under --work (default $PPC_LLM_CACHE/fuzz, else ~/.cache/ppc-llm/fuzz);
prints executions, time and crashes per loader, exits 1 when a crash was found (copy the input to
tests/fuzz/regressions/<loader>/ once it is fixed) and 0 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..cache import cache_root
from ..errors import ToolkitError
from . import BOUNDED_MAX_LEN, LOADERS, alloc_fail, build, fuzz


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m toolkit.fuzz", description=__doc__.split("\n")[0])
    parser.add_argument("--loader", choices=("all", *LOADERS), default="all")
    parser.add_argument("--runs", type=int, default=1_000_000, help="executions per loader")
    parser.add_argument("--max-time", type=int, default=7200, help="seconds per loader at most")
    parser.add_argument("--max-len", type=int, default=0,
                        help=f"cap on the input size (0: the largest seed; the test suite uses {BOUNDED_MAX_LEN})")
    parser.add_argument("--work", type=Path, default=None, help="corpus, crashes and builds")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    work = args.work or cache_root() / "fuzz"
    try:
        fb = build(work)
        crashed = False
        for loader in LOADERS if args.loader == "all" else (args.loader,):
            result = fuzz(fb, loader, work / "corpus" / loader, work / "crashes" / loader, args.runs,
                          args.max_time, max_len=args.max_len)
            crashed |= bool(result.crashes)
            print(f"fuzz {loader}: {result.executions} executions in {result.seconds:.1f} s, "
                  f"{len(result.crashes)} crashes {[str(p) for p in result.crashes]}", flush=True)
            if result.crashes:
                print(result.log_tail, file=sys.stderr)
        alloc_ok = True
        for label, model in (("tiny", fb.base), ("tiny GGUF, BPE + chat", fb.bpe_base)):
            total, failed = alloc_fail(fb, model)
            alloc_ok &= failed.returncode == 0
            print(f"allocation failure injection ({label}): N = 1 .. {total}, exit {failed.returncode}", flush=True)
    except ToolkitError as exc:
        print(f"error: {exc.message}" + (f"\n{exc.hint}" if exc.hint else ""), file=sys.stderr)
        return exc.exit_code
    return 1 if crashed or not alloc_ok else 0


if __name__ == "__main__":
    sys.exit(main())
