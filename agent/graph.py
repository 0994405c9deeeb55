"""Wiring only: the writers' room graph. Routing lives in the nodes (typed `Command`s)."""
from __future__ import annotations

from typing import Any

from langgraph.graph import START, StateGraph

from agent import chat, nodes
from agent.context import DirectorContext
from agent.state import DirectorState

RECURSION_LIMIT = 60  # one user turn never needs more steps than this; caps any agent loop


def build_graph(checkpointer: Any) -> Any:
    graph = StateGraph(DirectorState, context_schema=DirectorContext)
    graph.add_node("plan_next", nodes.plan_next)
    graph.add_node("wait_input", nodes.wait_input)
    graph.add_node("propose", nodes.propose)
    graph.add_node("review", nodes.review)
    graph.add_node("commit", nodes.commit)
    graph.add_node("respond", chat.respond)
    graph.add_edge(START, "plan_next")
    return graph.compile(checkpointer=checkpointer)
