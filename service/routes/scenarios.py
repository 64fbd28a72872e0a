"""GET /api/scenarios: the four procurement scenarios (DESIGN.md)."""

from __future__ import annotations

from fastapi import APIRouter

from kb.scenarios import load_scenarios
from service.schemas import ScenarioDescriptionOut

router = APIRouter(prefix="/api", tags=["scenarios"])


@router.get("/scenarios", response_model=list[ScenarioDescriptionOut], summary="The four procurement scenarios")
def list_scenarios() -> list[dict]:
    return [scenario.model_dump() for scenario in load_scenarios().values()]
