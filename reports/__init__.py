"""The claim report: claims.json (all data, plots included) and a self-contained index.html,
built by `reports.build`, rebuilt by `uplab report DIR`.

The file names live here, not in `reports.build`, so that `uplab --help` can name them without
importing the report's machinery (jinja2, numpy through the records).
"""

CLAIMS_FILE = "claims.json"
INDEX_FILE = "index.html"
