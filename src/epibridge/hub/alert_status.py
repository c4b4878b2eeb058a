"""The statuses of an alert (one definition, light enough for the CLI's start-up)."""

from __future__ import annotations

from typing import Literal, get_args

Status = Literal["new", "under_review", "verified", "discarded", "closed"]
STATUSES: tuple[Status, ...] = get_args(Status)

__all__ = ["STATUSES", "Status"]
