"""The study: small functions per step, each importable on its own in a notebook (the
chapters, in order: see docs/ARCHITECTURE.md). Nothing here draws; :mod:`derain_lib.viz` does."""

from ..fsutil import scratch_when_by_hand

if (_scratch := scratch_when_by_hand()) is not None:
    print(f"run by hand: results and figures go to {_scratch} (only `derain reproduce` writes "
          "the committed results/<profile>/ and figures/<profile>/)")  # fmt: skip
