"""The claim report: claims.json (all data, plots included) and a self-contained index.html,
built by `reports.build`, rebuilt by `uplab report DIR`."""
