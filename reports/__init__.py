"""HTML reports of runs and an index of all runs.

* :mod:`reports.run_report` — ``report.html`` in each run directory (``clew report``);
* :mod:`reports.check_report` — the page of ``clew check --report OUT``;
* :mod:`reports.index` — ``store/index.html``, every run newest first;
* :mod:`reports.serve` — ``clew serve``: the store over HTTP, nothing outside it;
* :mod:`reports.data` — the capped, vectorised series behind the charts.

Pages are single self-contained files (CSS, JS and data inlined; uPlot vendored under
``reports/static/``, MIT); nothing is fetched from the network.
"""
