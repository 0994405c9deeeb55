"""Motion for a scene: per shot the camera move and easing, grade, effects, transition and pacing
pad (`agent.cut`), with a low-res preview clip that plays under the card. Rows follow the shot plan.
"""
from __future__ import annotations

from typing import Literal

from langgraph.types import Command

from agent import cut
from agent.context import DirectorContext
from agent.kinds.base import Kind, finish_media, validate
from agent.kinds.cards import motion_markdown
from agent.schemas import PROPOSAL_MODELS, PROPOSAL_TITLES
from agent.state import DirectorState, Pending, Task
from memory.errors import StoryreelError


def _propose(kind: Kind, state: DirectorState, ctx: DirectorContext, task: Task, pending: Pending
             ) -> Command[Literal["review"]]:
    """Motion from the shot plan and the notes, image-to-video frames when a model is set, a preview."""
    try:
        data = cut.propose_motion(ctx.canon, task["scene_id"], list(state.get("notes") or []))
        cut.animate_shots(ctx, data, pending["proposal_id"])
        data["preview"] = cut.render_preview(ctx, task["scene_id"], data, pending["proposal_id"])
        pending["data"] = validate(kind, data)
    except StoryreelError as exc:
        pending["failure"] = str(exc)
    return finish_media(kind, state, ctx, task, pending, f"{task['scene_id']}, "
                        f"{len((pending['data'] or {}).get('shots', []))} shots with a preview")


KINDS = (
    # the cut's planner: a motion proposal per scene whose panels and takes are accepted
    Kind(name="motion", title=PROPOSAL_TITLES["motion"], schema=PROPOSAL_MODELS["motion"], family="motion",
         plan=cut.next_cut_task, propose=_propose, record_id=lambda data: cut.motion_id(data["scene_id"]),
         card=motion_markdown, media="clip", rows_resizable=False),
)
