"""Task schedules as stored in ``fq:schedules``: what fires, when, and where it stands."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from fairque.core.models import Task


@dataclass
class Schedule:
    """A cron schedule that pushes a copy of ``task`` at each tick."""

    schedule_id: str
    cron_expr: str
    task: Task
    timezone: str = "UTC"
    catchup: bool = False
    paused: bool = False
    created_at: float = field(default_factory=lambda: datetime.now(timezone.utc).timestamp())
    """When it starts (no tick before it fires); ``add_schedule`` sets the server's time."""

    def to_json(self) -> str:
        """The JSON stored in the schedules hash."""
        data = asdict(self)
        data["task"] = self.task.to_dict()
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> Schedule:
        """Inverse of :meth:`to_json`."""
        data: dict[str, Any] = json.loads(text)
        data["task"] = Task.from_dict(data["task"])
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form for listings."""
        data = asdict(self)
        data["task"] = {
            "func": self.task.func,
            "user_id": self.task.user_id,
            "name": self.task.label,
        }
        return data
