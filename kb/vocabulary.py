"""The knowledge base's small vocabulary, declared once: languages, scenario ids, kinds of text, jurisdictions.

The manifest, uploads, the service's forms and schemas, the CLI, the dataset format
and the clause finder all take their allowed values from here, so a new language or
kind is added in one place. Each is a `Literal` type (for pydantic, FastAPI and type
checks) with the tuple of its values beside it.
"""

from __future__ import annotations

from typing import Literal, get_args

Language = Literal["da", "en"]
LANGUAGES: tuple[str, ...] = get_args(Language)

ScenarioId = Literal["behov", "prototype", "demo", "loesning"]
SCENARIO_IDS: tuple[str, ...] = get_args(ScenarioId)  # in the order of the procurement: need to finished solution

Kind = Literal["regulation", "directive", "act", "contract", "guidance"]
KINDS: tuple[str, ...] = get_args(Kind)
LAW_KINDS: tuple[str, ...] = ("regulation", "directive", "act")  # the kinds that are law (the clause finder's "law")

Jurisdiction = Literal["DK", "EU"]
JURISDICTIONS: tuple[str, ...] = get_args(Jurisdiction)
