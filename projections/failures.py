"""What a projection raises when it cannot apply an event (shared by the runtime and its workers)."""

from __future__ import annotations


class ProjectionFailed(RuntimeError):
    """A projection could not apply an event; its batch was rolled back and its position kept."""

    def __init__(self, projection: str, position: int, topic: str, cause: BaseException):
        self.projection, self.position, self.topic, self.cause = projection, position, topic, cause
        super().__init__(f"projection {projection!r} failed on the event at log position {position} "
                         f"({topic}): {type(cause).__name__}: {cause}")
