"""The report page of a run (``reports/index.html``): what it reads (:mod:`.sources`), its statistics
(:mod:`.stats`), the most confidently wrong dev examples (:mod:`.mistakes`), figures (:mod:`.figures`) and the HTML
(:mod:`.page`).

The page uses no network: figures are PNG files beside it, styles are inline.
"""
