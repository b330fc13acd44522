"""Thin on purpose: the uplab plugin (options, markers, fixtures, claim report) lives in fixtures/."""

pytest_plugins = ["fixtures.plugin", "fixtures.gpus"]
