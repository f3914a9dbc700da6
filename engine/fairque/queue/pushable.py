"""What the queue accepts where it expects a Task (push, push_batch, enqueue, schedules).

A :class:`~fairque.core.models.Task`, or an object with a ``__fairque_task__()`` method
that returns the Task to push or raises a TaskError saying why it cannot be pushed. The
``@task`` layer (above this one) fills the hook in: an ``@task`` function that was not
called becomes its task when it takes no required arguments, and a task whose function
a worker could not import is refused before anything is written.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from fairque.core.errors import TaskError, shorten
from fairque.core.models import Task


@runtime_checkable
class MakesTask(Protocol):
    """Something that gives the Task to push (an ``@task`` function, a FunctionTask)."""

    def __fairque_task__(self) -> Task:
        """The Task to push, or a TaskError saying why this cannot be pushed."""
        ...


def as_task(item: object) -> Task:
    """``item`` as the Task to push; a TaskError names the fix for anything else."""
    if type(item) is Task:  # the common case, without the slow Protocol check
        return item
    made = item.__fairque_task__() if isinstance(item, MakesTask) else item
    if not isinstance(made, Task):
        raise TaskError(
            f"expected a Task (e.g. made by calling an @task function), "
            f"not {type(made).__name__}: {shorten(made)}"
        )
    return made
