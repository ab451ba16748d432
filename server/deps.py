"""FastAPI dependency aliases: route signatures say what they use."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from server.lifespan import AppState
from server.openai.service import ChatService


def app_state_of(request: Request) -> AppState:
    """The resources opened by the lifespan."""
    state: AppState = request.state.agent
    return state


# Dependencies are `async def` on purpose: FastAPI runs plain `def` ones in a thread pool.
async def get_app_state(request: Request) -> AppState:
    """The resources opened by the lifespan."""
    return app_state_of(request)


async def get_chat_service(request: Request) -> ChatService:
    """The service that runs chat completions."""
    return app_state_of(request).chat


AppStateDep = Annotated[AppState, Depends(get_app_state)]
ChatServiceDep = Annotated[ChatService, Depends(get_chat_service)]
