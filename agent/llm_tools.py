"""Tool calling on an OpenAI-compatible endpoint, for `OpenAIChatModel.chat_with_tools`.

Native tool calls (`tools=[…]`, `tool_choice`) where the endpoint has them; an endpoint that rejects
`tools` is asked for a JSON "action" reply instead (`{"actions": [{"tool", "arguments"}]}`,
schema-constrained where it can be), and the model instance remembers which form works
(`tool_form`). The caller (agent.router) validates every call with the tools' pydantic argument
models; nothing here trusts the reply.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.llm import OpenAIChatModel

#: HTTP statuses with which servers refuse a `tools` request they do not support.
TOOLS_REJECTED_STATUSES = (400, 404, 422, 500, 501)


def chat_with_tools(model: OpenAIChatModel, messages: list[dict[str, Any]], tools: list[dict[str, Any]], *,
                    tool_choice: str = "auto", temperature: float = 0.2, max_tokens: int = 512) -> dict[str, Any]:
    """One turn of tool choice: `{"content": text or None, "tool_calls": [{"id", "name", "arguments"
    (JSON text)}]}`. BackendError (naming the server) for anything but a rejected `tools` request."""
    from agent.llm import _sendable

    openai = model._openai
    if getattr(model, "_tool_form", None) != "json_action":
        request = {"model": model.model, "messages": [_sendable(m) for m in messages], "tools": tools,
                   "tool_choice": tool_choice, "temperature": temperature, "max_tokens": max_tokens}
        try:
            completion = model._create_raw(request)
        except openai.APIStatusError as exc:
            if exc.status_code not in TOOLS_REJECTED_STATUSES or getattr(model, "_tool_form", None):
                raise model._mapped(exc) from exc
            model._tool_form = "json_action"
        except openai.OpenAIError as exc:
            raise model._mapped(exc) from exc
        else:
            model._tool_form = "tools"
            choices = getattr(completion, "choices", None) or []
            message = choices[0].message if choices else None
            calls = [{"id": c.id, "name": c.function.name, "arguments": c.function.arguments}
                     for c in (getattr(message, "tool_calls", None) or []) if getattr(c, "function", None)]
            return {"content": getattr(message, "content", None), "tool_calls": calls}
    return json_actions(model, messages, tools, temperature=temperature, max_tokens=max_tokens)


def json_actions(model: OpenAIChatModel, messages: list[dict[str, Any]], tools: list[dict[str, Any]], *,
                 temperature: float, max_tokens: int) -> dict[str, Any]:
    """Tool choice as a JSON reply, for endpoints without tool calling."""
    from agent.llm import _first_json_object

    names = [t["function"]["name"] for t in tools]
    listing = "\n".join(f"- {t['function']['name']}: {t['function']['description']} arguments: "
                        f"{json.dumps(t['function']['parameters'].get('properties', {}))}" for t in tools)
    schema = {"title": "DirectorActions", "type": "object", "required": ["actions"], "properties": {
        "actions": {"type": "array", "items": {"type": "object", "required": ["tool", "arguments"], "properties": {
            "tool": {"type": "string", "enum": names}, "arguments": {"type": "object"}}}}}}
    flat: list[dict[str, str]] = []
    for m in messages:  # tool-call turns as plain text: this endpoint knows no tool messages
        if m.get("role") == "tool":
            flat.append({"role": "user", "content": f"Result of your action: {m.get('content', '')}"})
        elif m.get("tool_calls"):
            calls = [{"tool": c["function"]["name"], "arguments": c["function"]["arguments"]}
                     for c in m["tool_calls"]]
            flat.append({"role": "assistant", "content": json.dumps({"actions": calls})})
        else:
            flat.append({"role": str(m.get("role", "user")), "content": str(m.get("content") or "")})
    flat.insert(1 if flat and flat[0]["role"] == "system" else 0, {"role": "system", "content": (
        "Reply with one JSON object {\"actions\": [{\"tool\": NAME, \"arguments\": {...}}]} naming the tools "
        f"to call, in order (an empty list when none fits). Tools:\n{listing}")})
    text = model.complete(flat, json_schema=schema, temperature=temperature, max_tokens=max_tokens)
    obj = _first_json_object(text)
    actions = obj.get("actions") if isinstance(obj, dict) else None
    if not isinstance(actions, list):
        return {"content": text, "tool_calls": []}
    calls = []
    for i, action in enumerate(actions):
        if isinstance(action, dict):
            args = action.get("arguments")
            calls.append({"id": f"action_{i}", "name": str(action.get("tool", "")),
                          "arguments": args if isinstance(args, str) else json.dumps(args or {})})
    return {"content": None, "tool_calls": calls}
