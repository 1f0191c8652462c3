"""The report page of a run (``reports/index.html``): what it reads (:mod:`.sources`), its statistics
(:mod:`.stats`), error analysis (:mod:`.errors`), figures (:mod:`.figures`) and the HTML (:mod:`.page`).

The page uses no network: figures are PNG files beside it, styles are inline.
"""
