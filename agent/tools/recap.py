"""The "previously on" tool: "add a previously on to episode 2", "recap for ep 3".

`cold_open` proposes an episode's cold open (agent.kinds.recap) for the review gate: 3–6 s of
accepted shots of the episode before, with the series title. Nothing reaches canon until the
director accepts it; asking again for an episode that has one proposes a revision of it.
"""
from __future__ import annotations

from pydantic import BaseModel, Field

from agent.tools import Outcome, Tool, ToolContext, ToolError
from memory.errors import InputError


class ColdOpenArgs(BaseModel):
    episode: int | None = Field(default=None, ge=1, le=999, description="the episode that opens on it (2 or "
                                "later); omit for the latest started episode")


def cold_open(tc: ToolContext, args: ColdOpenArgs) -> Outcome:
    from agent.episodes import episode_record_id, started_episodes
    from agent.kinds.recap import draft_cold_open

    canon = tc.ctx.canon
    episode = args.episode if args.episode is not None else max(started_episodes(canon), default=1)
    try:
        draft_cold_open(canon, tc.ctx.project, episode)   # can it be made at all? (the card drafts it again)
    except InputError as exc:
        raise ToolError(str(exc)) from exc
    task = {"kind": "cold_open", "target_id": None, "episode": episode, "subject": episode_record_id(episode)}
    return Outcome(say=f"A 'previously on' for episode {episode}, picked from accepted shots of episode "
                       f"{episode - 1}: review it on the card.", tasks=[task])   # type: ignore[list-item]


TOOLS = (
    Tool("cold_open", "Propose a 3-6 s 'previously on' cold open for an episode, cut from accepted shots of the "
         "episode before.", ColdOpenArgs, cold_open, "episodes",
         target=lambda a: f"episode-{a.episode}" if a.episode else None),
)
