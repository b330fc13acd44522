"""Kept tiny. Heavy modules are imported once here, before any in-process `pytester` run:
pytester restores sys.modules after each inner run, so whatever an inner run imports first is
imported (and assertion-rewritten) again next time: seconds per run for hypothesis, and an
ImportError for numpy/scipy extension modules, which load only once per process."""

import harness.plots  # noqa: F401
import harness.stats  # noqa: F401
import reports.build  # noqa: F401

try:
    import hypothesis  # noqa: F401  (its pytest plugin imports it lazily in every inner run)
except ImportError:  # only a speed-up; the tests that need hypothesis import it themselves
    pass
