"""What the service writes to its logs: questions can carry patient details, so by default no question text.

With `KB_LOG_QUESTIONS` off (the default):
- uvicorn's access log has the client address, method, path and status, without the query string
  (`GET /api/search?q=...` would carry the query text; it is logged as `GET /api/search`);
- the `service` and `kb` loggers write startup, warnings and errors, naming the method and path, never a body;
- the generator logs why it dropped a sentence, not the sentence (kb.generator logs that at debug level).

With `KB_LOG_QUESTIONS=true` the access log keeps query strings, every /api/ask question is logged on the
`service.questions` logger, and kb.generator logs at debug level (the dropped sentences).
"""

from __future__ import annotations

import copy
import json
import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.config import LOGGING_CONFIG

questions_log = logging.getLogger("service.questions")

# the longest /api/ask body looked at for its question (the body limit stops larger ones before this)
MAX_LOGGED_BODY = 256 * 1024


class DropQueryString(logging.Filter):
    """Cut the query string off the path in uvicorn's access records: ('addr', 'GET', '/p?q=..', '1.1', 200)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (*args[:2], args[2].split("?", 1)[0], *args[3:])
        return True


def log_config(log_questions: bool = False) -> dict[str, Any]:
    """uvicorn's logging config, with the query strings dropped unless `log_questions`, and the app's loggers on."""
    config = copy.deepcopy(LOGGING_CONFIG)
    if not log_questions:
        config.setdefault("filters", {})["drop_query_string"] = {"()": f"{__name__}.DropQueryString"}
        config["handlers"]["access"]["filters"] = ["drop_query_string"]
    for name in ("service", "kb"):
        config["loggers"][name] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    config["loggers"]["kb.generator"] = {"level": "DEBUG" if log_questions else "INFO"}
    return config


class QuestionLogMiddleware:
    """Installed only with KB_LOG_QUESTIONS=true: logs the question of each POST /api/ask as it is read."""

    def __init__(self, app: ASGIApp, path: str = "/api/ask") -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        body = bytearray()

        async def reading_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(body) <= MAX_LOGGED_BODY:
                body.extend(message.get("body", b""))
                if not message.get("more_body", False):
                    _log_question(bytes(body))
            return message

        await self.app(scope, reading_receive, send)


def _log_question(body: bytes) -> None:
    try:
        question = json.loads(body).get("question")
    except (ValueError, AttributeError):
        return
    if isinstance(question, str):
        questions_log.info("ask: %r", question)
