"""The four procurement scenarios (DESIGN.md): labels, descriptions and the provisions that matter in each.

An answer is tied to the scenario the asker is in, so retrieval can favour the
provisions of that scenario's profile and the service can show its label. The
scenarios are data (kb/data/scenarios.yaml) so lawyers can edit the profiles
without touching code; this module validates and serves them.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kb.references import covers, is_reference
from kb.vocabulary import SCENARIO_IDS

SCENARIOS_FILE = Path(__file__).resolve().parent / "data" / "scenarios.yaml"


class Bilingual(BaseModel):
    """A text in Danish and English; both are required because answers come in either language."""

    model_config = ConfigDict(extra="forbid")

    da: str = Field(min_length=1)
    en: str = Field(min_length=1)

    def get(self, language: str | None) -> str:
        """The text in `language`; English for anything but Danish."""
        return self.da if language == "da" else self.en


class BilingualList(BaseModel):
    """Lists of texts in Danish and English (typical questions)."""

    model_config = ConfigDict(extra="forbid")

    da: list[str] = Field(min_length=1)
    en: list[str] = Field(min_length=1)


class ProfileEntry(BaseModel):
    """One provision that matters in a scenario, and why (shown to the user beside the citation)."""

    model_config = ConfigDict(extra="forbid")

    ref: str
    why: Bilingual

    @field_validator("ref")
    @classmethod
    def _valid_ref(cls, value: str) -> str:
        if not is_reference(value):
            raise ValueError(f"not a reference: {value!r} (expected e.g. 'ai-act:art-26' or 'udbudsloven:§-73')")
        return value


class Scenario(BaseModel):
    """A procurement scenario: who is asking, at which stage, and which provisions typically matter."""

    model_config = ConfigDict(extra="forbid")

    id: str
    label: Bilingual
    description: Bilingual  # one line
    details: Bilingual  # a longer paragraph
    typical_questions: BilingualList
    profile: list[ProfileEntry] = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _known_id(cls, value: str) -> str:
        if value not in SCENARIO_IDS:
            raise ValueError(f"unknown scenario id {value!r}; expected one of {', '.join(SCENARIO_IDS)}")
        return value


def _field_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def parse_scenarios(data: object, source: str = "scenarios") -> dict[str, Scenario]:
    """Validate raw YAML data; ValueError names the scenario and the field that is wrong."""
    if not isinstance(data, dict) or not isinstance(data.get("scenarios"), list):
        raise ValueError(f"{source}: expected a mapping with a 'scenarios' list")
    out: dict[str, Scenario] = {}
    for index, raw in enumerate(data["scenarios"]):
        name = raw.get("id", f"#{index}") if isinstance(raw, dict) else f"#{index}"
        try:
            scenario = Scenario.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(f"{_field_path(e['loc']) or '(scenario)'}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"{source}: scenario {name}: {problems}") from exc
        if scenario.id in out:
            raise ValueError(f"{source}: scenario {scenario.id}: id: duplicate scenario id")
        out[scenario.id] = scenario
    missing = [sid for sid in SCENARIO_IDS if sid not in out]
    if missing:
        raise ValueError(f"{source}: scenarios: missing {', '.join(missing)}")
    return {sid: out[sid] for sid in SCENARIO_IDS}


@lru_cache(maxsize=4)
def load_scenarios(path: Path = SCENARIOS_FILE) -> dict[str, Scenario]:
    """The scenarios by id, in DESIGN order; read once (cached) since every answer needs them."""
    return parse_scenarios(yaml.safe_load(Path(path).read_text(encoding="utf-8")), source=str(path))


def get_scenario(scenario_id: str) -> Scenario:
    """One scenario; KeyError lists the valid ids."""
    scenarios = load_scenarios()
    if scenario_id not in scenarios:
        raise KeyError(f"unknown scenario {scenario_id!r}; expected one of {', '.join(SCENARIO_IDS)}")
    return scenarios[scenario_id]


def scenario_label(scenario_id: str, language: str | None = "da") -> str:
    """The label shown to the user ('LØSNING' / 'Solution'); English for any language but Danish."""
    return get_scenario(scenario_id).label.get(language)


def profile_refs(scenario_id: str) -> list[str]:
    """The references of the provisions that matter in a scenario, in profile order."""
    return [entry.ref for entry in get_scenario(scenario_id).profile]


def in_profile(profile: list[str], ref: str) -> bool:
    """True when an entry of the profile covers `ref`.

    An entry that is a bare doc id stands for an organisation's own document tagged with the scenario at upload
    (`KnowledgeBase.scenario_profile`): it covers every passage of that document.
    """
    doc = ref.partition(":")[0]
    return any(entry == doc or covers(entry, ref) for entry in profile)
