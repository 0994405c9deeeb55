"""Episode tools: start the next episode (or a given one) of the season.

`start_episode` is the director's own logged decision (like `undo`): it marks the episode started
in canon (agent.episodes) and puts its first card on the review gate: the story so far of the
episode before when that is still to be reviewed, else the episode's first proposal (its beats).
"""
from __future__ import annotations

from pydantic import BaseModel, Field

from agent.state import Task
from agent.tools import Outcome, Tool, ToolContext, ToolError
from memory.errors import InputError


class StartEpisodeArgs(BaseModel):
    episode: int | None = Field(default=None, ge=1, le=999, description="the episode to start; omit for the "
                                "next one after the last started episode")


def start_episode(tc: ToolContext, args: StartEpisodeArgs) -> Outcome:
    from agent import episodes
    from agent.kinds import next_task

    ctx = tc.ctx
    episode = args.episode if args.episode is not None else episodes.next_unstarted(ctx.canon)
    already = episodes.is_started(ctx.canon, episode)
    try:
        episodes.start_episode(ctx.canon, ctx.ledger, episode, actor="human", request=tc.text)
    except InputError as exc:
        raise ToolError(str(exc)) from exc
    tasks: list[Task] = []
    before = next_task(ctx.canon, ctx, episode=episode - 1) if episode > 1 else None
    pending = tc.pending or {}
    on_card = (before is not None and before.get("kind") == "facts" and pending.get("kind") == "facts"
               and (pending.get("data") or {}).get("episode") == before.get("episode"))
    if before is not None and before.get("kind") == "facts" and not on_card:   # the story so far comes first
        tasks.append(before)
    first = next_task(ctx.canon, ctx, episode=episode) if not on_card else None
    if first is not None:
        tasks.append(first)
    title = (ctx.canon.live(episodes.episode_record_id(episode)) or None)
    name = f" “{title.data.get('title')}”" if title is not None and title.data.get("title") else ""
    said = (f"Episode {episode}{name} was started already." if already else f"Episode {episode}{name} is started.")
    if on_card:   # it stays on the card; the planner comes to the episode once it is decided
        said += f" First the story so far of episode {episode - 1} on the card, then episode {episode}."
    elif not tasks:
        said += f" Nothing of episode {episode} is waiting for review now."
    elif tasks[0].get("kind") == "facts":
        said += f" First the story so far of episode {episode - 1}, then episode {episode}'s beats."
    return Outcome(say=said, tasks=tasks, wrote=not already)


TOOLS = (
    Tool("start_episode", "Start the next episode of the season (or a given one): its beats open on the "
         "cliffhanger before.", StartEpisodeArgs, start_episode, "actions",
         target=lambda a: f"episode-{a.episode}" if a.episode else None),
)
