"""Schemathesis against the service's own OpenAPI schema, on a real `kb serve` over the session's knowledge base.

Bounded: --max-examples per operation and a fixed seed, one worker. Checks: no 5xx, every status code and
content type documented, every response body valid against its documented schema (errors in the one shape).
Half the JSON bodies have a lone surrogate put into each string (tests/fuzz_hooks.py), which schemathesis's own
text strategies never produce: each must be a documented 422, never a 500.
The rate limit is off for this server: one client sends everything and a 429 would hide what is behind it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, kb_env
from tests.servers import serve

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 30
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, small_kb) -> Iterator[str]:  # type: ignore[no-untyped-def]
    settings = small_kb.settings
    env = kb_env(settings.data_dir, settings.manifest, settings.corpus_dir, KB_RATE_LIMIT_PER_MINUTE="0")
    yield from serve(env, tmp_path_factory.mktemp("fuzz-server") / "server.log")


def test_schemathesis_finds_no_server_error_and_no_schema_violation(server: str, tmp_path: Path) -> None:
    st = Path(sys.executable).parent / "st"
    command = [
        str(st), "run", f"{server}/openapi.json",
        "--checks", CHECKS,
        "--max-examples", str(MAX_EXAMPLES),
        "--seed", "20250701",
        "--workers", "1",
        "--no-shrink",
        "--request-timeout", "120",
        "--suppress-health-check", "filter_too_much",  # passage ids are free-form paths: most generated ones are filtered
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": str(REPO / "tests" / "fuzz_hooks.py")}
    run = subprocess.run(command, check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200)
    output = run.stdout + run.stderr
    summary = re.search(r"(\d+) generated, .*", output)
    print(output[-3000:])  # the figures: operations, test cases, failures
    assert summary and int(summary.group(1)) > 0, output[-3000:]
    assert run.returncode == 0, output[-6000:]
