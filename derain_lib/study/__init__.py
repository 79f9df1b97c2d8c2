"""The study: small functions per step, each importable on its own in a notebook.

- :mod:`.plan`: what a profile means (configs, benchmarks, test sets); :class:`.plan.Params`.
- :mod:`.inventory` (00): open and fingerprint the data, keep sample pairs.
- :mod:`.training` (01, 08): train the models the tables need (and the claims' extra
  training seeds), through the run cache.
- :mod:`.scoring` (02-04): score methods on test sets, image by image, into
  :mod:`.record`: the study's one record, ``scores.csv`` (every table, claim and figure
  derives from it), its one degeneracy rule and the seed means.
- :mod:`.probes` (03): the released SIAN's stages and its attention knocked out at inference.
- :mod:`.tabulate`: table rows with provenance (``tableN.csv``, ``tables.md``).
- :mod:`.figures` (05): the files figures are drawn from; the figure index.
- :mod:`.beyond` (07): one module per section of chapter 07, each ``run(params, models)``.
- :mod:`.claims` (08): the paper's claims as data, two verdicts each (direction with Holm's
  correction, size against the paper's difference); ``claims.csv``.
- :mod:`.pipeline`, :mod:`.report`: papermill runner and the HTML report.

Nothing here draws; :mod:`derain_lib.viz` does. The narrative (what a run found) is in the
notebooks, computed there from these functions' tables.
"""

from ..roots import scratch_when_by_hand

if (_scratch := scratch_when_by_hand()) is not None:
    print(
        f"run by hand: results and figures go to {_scratch} (only `derain reproduce` "
        "writes the committed results/<profile>/ and figures/<profile>/)"
    )
