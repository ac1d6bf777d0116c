"""Checkstack's events and jobs on procrastinate over PostgreSQL (SPEC §8).

Install it next to the core, point every process at one PostgreSQL database and select it::

    CHECKSTACK_EVENTS_ENGINE=procrastinate CHECKSTACK_JOBS_ENGINE=procrastinate

``checkstack serve`` processes then only serve requests (they still schedule jobs and emit
events); ``checkstack worker`` processes run the jobs and work-queue events. Plugin code does not
change. ``plugin`` is what the ``checkstack.plugins`` entry point names.
"""

from __future__ import annotations

from ._plugin import plugin

__all__ = ["plugin"]
