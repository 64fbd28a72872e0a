"""The offline and telemetry defaults are set in one place (kb/__init__.py) and reach every entry point first."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

FLAGS = ("HF_HUB_OFFLINE", "ANONYMIZED_TELEMETRY")


def test_no_module_but_kb_init_sets_the_flags() -> None:
    setters = re.compile(r"os\.environ\.setdefault\(\"(" + "|".join(FLAGS) + r")\"")
    offenders = [
        f"{path.relative_to(REPO)}:{n}"
        for package in ("ingest", "kb", "service", "eval")
        for path in sorted((REPO / package).rglob("*.py"))
        if path != REPO / "kb" / "__init__.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if setters.search(line)
    ]
    assert not offenders, f"set the offline defaults in kb/__init__.py only: {offenders}"


@pytest.mark.parametrize("package", ["ingest", "kb", "service", "eval"])
def test_every_package_sets_the_flags_before_its_libraries(package: str) -> None:
    """A fresh interpreter with neither flag set: importing the package alone sets both, so any of its modules run
    as `python -m` (eval's import llama-index first thing) sees them before its libraries do."""
    env = {k: v for k, v in os.environ.items() if k not in FLAGS}
    code = f"import os, sys; import {package}; print(os.environ.get('HF_HUB_OFFLINE'), os.environ.get('ANONYMIZED_TELEMETRY'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "False"], out.stderr
