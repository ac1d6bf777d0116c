"""The hello plugin's tables (names prefixed with the plugin id)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from checkstack_core.db import UtcDateTime, utcnow

DEFAULT_TEMPLATE = "Hello, {name}!"


class GreetingTemplate(SQLModel, table=True):
    """A single row (id 1) holding the current template."""

    __tablename__ = "hello_greeting"

    id: int = Field(default=1, primary_key=True)
    template: str = Field(max_length=500)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
