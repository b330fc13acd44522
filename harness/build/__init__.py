"""Two builders, one result: `native` (in memory or streaming to disk) and `reference` (mergekit)."""
