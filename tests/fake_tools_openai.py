"""A scripted OpenAI-compatible server on loopback that speaks the real `tool_calls` wire format.

Requests with `tools` get the next scripted turn: `{"calls": [(name, arguments), ...]}` (arguments a
dict, or a str sent as is, e.g. broken JSON) or `{"content": "prose"}`. With `tools_supported=False`
a request with `tools` is refused with HTTP 400, as endpoints without tool calling do; the client then
asks for a JSON action reply (`response_format`), answered from the same script. Every other request
(proposals, answers) is answered by `tests.fakes.ScriptedChatModel`, as tests/fake_openai.py does.
Test use only.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from tests.fakes import ScriptedChatModel


class FakeToolsServer:
    def __init__(self, turns: list[dict[str, Any]] | None = None, *, tools_supported: bool = True) -> None:
        self.turns = list(turns or [])
        self.tools_supported = tools_supported
        self.model = ScriptedChatModel()
        self.requests: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._send(200, {"object": "list", "data": [{"id": "fake-tools", "object": "model"}]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                outer.requests.append(body)
                if "tools" in body:
                    if not outer.tools_supported:
                        self._send(400, {"error": {"message": "tools are not supported by this server",
                                                   "type": "invalid_request_error"}})
                        return
                    self._send(200, outer._tool_turn())
                    return
                fmt = body.get("response_format") or {}
                schema = fmt.get("schema") or (fmt.get("json_schema") or {}).get("schema")
                if (schema or {}).get("title") == "DirectorActions":
                    turn = outer._next_turn()
                    actions = [{"tool": n, "arguments": a} for n, a in turn.get("calls", [])]
                    text = turn.get("content") or json.dumps({"actions": actions})
                else:
                    text = outer.model.complete(body.get("messages", []), json_schema=schema)
                self._send(200, _completion({"role": "assistant", "content": text}, "stop"))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def _next_turn(self) -> dict[str, Any]:
        return self.turns.pop(0) if self.turns else {"content": "I have nothing to add."}

    def _tool_turn(self) -> dict[str, Any]:
        turn = self._next_turn()
        if "calls" not in turn:
            return _completion({"role": "assistant", "content": turn.get("content", "")}, "stop")
        calls = [{"id": f"call_{i}", "type": "function",
                  "function": {"name": name, "arguments": args if isinstance(args, str) else json.dumps(args)}}
                 for i, (name, args) in enumerate(turn["calls"])]
        return _completion({"role": "assistant", "content": None, "tool_calls": calls}, "tool_calls")

    def tool_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if "tools" in r]

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _completion(message: dict[str, Any], finish: str) -> dict[str, Any]:
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": "fake-tools",
            "choices": [{"index": 0, "finish_reason": finish, "message": message}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
