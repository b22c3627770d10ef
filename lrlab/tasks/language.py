"""Placeholder: this module's tasks are being written (issue 17)."""

from collections.abc import Callable

from lrlab.tasks.task import Task

BUILDERS: dict[str, Callable[..., Task]] = {}
