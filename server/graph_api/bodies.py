"""The request bodies of this door: strict types, unknown fields ignored, no NaN or Infinity.

As on `/v1`: a boolean is not a number (`"limit": true` is a 422), a string is not a
boolean. Unknown fields are ignored, so a newer SDK's extra options do not break a request.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["Body"]


class Body(BaseModel):
    """A request body of the LangGraph API door."""

    model_config = ConfigDict(strict=True, extra="ignore", allow_inf_nan=False)
