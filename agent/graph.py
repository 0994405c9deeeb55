"""Wiring only: the writers' room graph. Routing lives in the nodes (typed `Command`s).

Every node is `contained`: an exception inside a step becomes a failure card on the review gate
(Redo / Skip), so no error can lock the project by failing again on every resume.
"""
from __future__ import annotations

from typing import Any

from langgraph.graph import START, StateGraph

from agent import chat, nodes
from agent.context import DirectorContext
from agent.guard import contained
from agent.state import DirectorState

RECURSION_LIMIT = 60  # one user turn never needs more steps than this; caps any agent loop

STEPS = (("plan_next", nodes), ("wait_input", nodes), ("propose", nodes), ("review", nodes),
         ("commit", nodes), ("respond", chat))   # node name, module that defines it (read at build time)


def build_graph(checkpointer: Any) -> Any:
    graph = StateGraph(DirectorState, context_schema=DirectorContext)
    for name, module in STEPS:
        graph.add_node(name, contained(name, getattr(module, name)))
    graph.add_edge(START, "plan_next")
    return graph.compile(checkpointer=checkpointer)
