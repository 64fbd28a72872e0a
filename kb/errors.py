"""The knowledge base's own errors; each face (CLI, HTTP) turns them into one message."""

from __future__ import annotations


class KBError(Exception):
    """Base of every error the knowledge base raises on purpose."""


class NotBuiltError(KBError):
    """The store holds no passages yet: `kb ingest` has not run."""

    def __init__(self, where: str) -> None:
        super().__init__(f"the knowledge base at {where} is not built yet: run `kb ingest`")


class UnknownPassageError(KBError):
    """No passage has this id."""

    def __init__(self, passage_id: str) -> None:
        self.passage_id = passage_id
        super().__init__(f"no passage with id {passage_id!r}")


class InvalidFilterError(KBError):
    """A filter names a value the knowledge base does not hold (field, value, the valid values)."""

    def __init__(self, field: str, value: str, valid: list[str]) -> None:
        self.field = field
        self.value = value
        self.valid = valid
        super().__init__(f"unknown {field} {value!r}; valid: {', '.join(valid)}")


class EmbeddingMismatchError(KBError):
    """The store was built with another embedding model than the one configured."""


class InvalidQuestionError(KBError):
    """A question that cannot be asked: empty or too long."""


class UnencodableTextError(KBError):
    """A text field holds a lone surrogate: not text UTF-8 can encode, so not text the engine can read (kb/text.py)."""

    code = "unencodable_text"  # the API's error code, whichever check found it

    def __init__(self, field: str, position: int, codepoint: int) -> None:
        self.field = field
        self.position = position
        # the message names the code point, never the text: it has to be printable and sendable itself
        super().__init__(
            f"{field} holds a lone surrogate (U+{codepoint:04X}) at character {position + 1}: "
            "not text that can be encoded as UTF-8; send the text as UTF-8"
        )


class StoreUnavailableError(KBError):
    """The vector store (a Chroma server in server mode) cannot be reached: down, or too slow to answer."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        super().__init__(f"the vector store at {where} is not reachable ({reason}); retry when it is back")


class InvalidSettingError(KBError, ValueError):
    """A setting (an environment variable or `.env` entry) breaks its rule: names each variable and the rule."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems  # (variable, rule), e.g. ("KB_RATE_LIMIT_BURST", "input should be greater than or equal to 1")
        lines = [rule if rule.startswith(variable) else f"{variable}: {rule}" for variable, rule in problems]
        super().__init__(("invalid setting " if len(lines) == 1 else "invalid settings: ") + "; ".join(lines))
