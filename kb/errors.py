"""Every error the project raises on purpose, in one tree under `KBError`, each with a stable code.

Each face turns them into one message: the CLI prints it, the API answers with the status that service/errors.py's
one table gives the code (a code, never an HTTP status, lives here). The ingest's, the uploads' and the
evaluation's errors are here too, so a caller can catch `KBError` for all of them; their modules re-export them.
"""

from __future__ import annotations

from pathlib import Path


class KBError(Exception):
    """Base of every error the knowledge base raises on purpose: `code` names the reason, `field` what is at fault."""

    code: str = "kb_error"
    field: str | None = None


class NotBuiltError(KBError):
    """The store holds no passages yet: `kb ingest` has not run."""

    code = "not_built"

    def __init__(self, where: str) -> None:
        super().__init__(f"the knowledge base at {where} is not built yet: run `kb ingest`")


class UnknownPassageError(KBError):
    """No passage has this id."""

    code = "unknown_passage"
    field = "passage_id"

    def __init__(self, passage_id: str) -> None:
        self.passage_id = passage_id
        super().__init__(f"no passage with id {passage_id!r}")


class InvalidFilterError(KBError):
    """A filter names a value the knowledge base does not hold (field, value, the valid values)."""

    def __init__(self, field: str, value: str, valid: list[str]) -> None:
        self.field = field
        self.code = f"invalid_{field}"
        self.value = value
        self.valid = valid
        super().__init__(f"unknown {field} {value!r}; valid: {', '.join(valid)}")


class EmbeddingMismatchError(KBError):
    """The store was built with another embedding model than the one configured."""

    code = "embedding_mismatch"


class InvalidQuestionError(KBError):
    """A question that cannot be asked: empty or too long."""

    code = "invalid_question"
    field = "question"


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

    code = "store_unavailable"

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        super().__init__(f"the vector store at {where} is not reachable ({reason}); retry when it is back")


class InvalidSettingError(KBError, ValueError):
    """A setting (an environment variable or `.env` entry) breaks its rule: names each variable and the rule."""

    code = "invalid_setting"

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.field = problems[0][0] if problems else None
        self.problems = problems  # (variable, rule), e.g. ("KB_RATE_LIMIT_BURST", "input should be greater than or equal to 1")
        lines = [rule if rule.startswith(variable) else f"{variable}: {rule}" for variable, rule in problems]
        super().__init__(("invalid setting " if len(lines) == 1 else "invalid settings: ") + "; ".join(lines))


class NotCalibratedError(KBError):
    """No calibrated abstention model (kb/abstention.py): run `python -m eval.calibrate`."""

    code = "not_calibrated"


class RankerModelError(KBError, ValueError):
    """The ranker file does not fit this code's features (kb/ranker.py)."""

    code = "ranker_model"


class RoadmapInputError(InvalidFilterError):
    """A scenario, question key or answer value the roadmap does not know (kb/roadmap.py); names the valid ones."""

    def __init__(self, field: str, value: str, valid: list[str], message: str, code: str) -> None:
        super().__init__(field, value, valid)
        self.code = code
        self.args = (message,)

    def __str__(self) -> str:
        return str(self.args[0])


# --- ingest ------------------------------------------------------------------------------------


class ManifestError(KBError):
    """The manifest cannot be used (ingest/manifest.py); the message names the file and the field at fault."""

    code = "invalid_manifest"


class ParseError(KBError):
    """A source file that cannot be read as its declared format (ingest/parsers/).

    Carries the path and, where known, the line, so the report points at the fault.
    """

    code = "parse_error"

    def __init__(self, path: Path | str, reason: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.reason = reason
        self.line = line
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {reason}")


class SplitError(KBError):
    """A unit produced a reference outside DESIGN's grammar (ingest/splitter.py)."""

    code = "split_error"


# --- evaluation --------------------------------------------------------------------------------


class DatasetError(KBError):
    """A dataset line that does not follow the format (eval/dataset.py; file, line and field in the message)."""

    code = "invalid_dataset"


class LockedDatasetError(KBError):
    """Something tried to fit on the locked test set (eval/splits.py)."""

    code = "locked_dataset"
