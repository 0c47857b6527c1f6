"""The dependency audit's verdict on pip-audit reports, and its ignore list."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("audit_dependencies", ROOT / "scripts" / "audit_dependencies.py")
assert _spec and _spec.loader
audit = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(audit)

CLEAN = {"name": "fastapi", "version": "0.115.0", "vulns": []}
VULNERABLE = {"name": "jinja2", "version": "3.1.2", "vulns": [
    {"id": "GHSA-h5c8-rqwp-cp95", "fix_versions": ["3.1.3"], "aliases": ["CVE-2024-22195"], "description": "xss"}]}
SKIPPED = {"name": "torch", "skip_reason": "Dependency not found on PyPI and could not be audited: torch (2.13.0)"}


def test_a_known_vulnerability_fails_the_audit(caplog):
    caplog.set_level(logging.INFO)
    assert audit.verdict({"dependencies": [CLEAN, VULNERABLE, SKIPPED]}) == 1
    assert "jinja2 3.1.2: GHSA-h5c8-rqwp-cp95 (fixed in 3.1.3)" in caplog.text


def test_clean_packages_pass_and_unreachable_advisories_only_warn(caplog):
    assert audit.verdict({"dependencies": [CLEAN, SKIPPED]}) == 0
    assert audit.verdict({"dependencies": [SKIPPED, SKIPPED]}) == 0
    assert "no package could be audited" in caplog.text


def test_the_ignore_list_reads_ids_and_drops_reasons(tmp_path):
    listing = tmp_path / "ignore.txt"
    listing.write_text("# header\nGHSA-aaaa-bbbb-cccc  # only the CLI uses it\n\nPYSEC-2024-1\n")
    assert audit.ignored_ids(listing) == ["GHSA-aaaa-bbbb-cccc", "PYSEC-2024-1"]
    assert audit.ignored_ids(tmp_path / "absent.txt") == []
