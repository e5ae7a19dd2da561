"""The import contract "shipped code never imports the tests" names the tests' helper
modules one by one (they are imported by their own names, pythonpath "tests"): a new
helper module must join the list, or shipped code could import it unnoticed."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_tests_contract_names_every_helper_module() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = (c for c in config["contracts"] if "tests" in c.get("forbidden_modules", ()))
    helpers = {p.stem for p in (ROOT / "tests").glob("*.py") if not p.stem.startswith("test_")}
    assert helpers, "no helper module found under tests/"
    assert helpers <= set(contract["forbidden_modules"])
    assert set(contract["source_modules"]) == set(config["root_packages"])
