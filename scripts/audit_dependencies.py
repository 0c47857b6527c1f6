"""Known vulnerabilities in the installed packages: fail on any, unless requirements/audit-ignore.txt lists it.

    python scripts/audit_dependencies.py

Runs pip-audit against PyPI's advisory data. Where that data cannot be reached (a machine that sees only
a package mirror gets 404 from PyPI's JSON API), nothing can be audited: that is reported as a warning
and does not fail the build, since it says nothing about the packages.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

logger = logging.getLogger("audit")
ROOT = Path(__file__).resolve().parent.parent
IGNORE_FILE = ROOT / "requirements" / "audit-ignore.txt"


def ignored_ids(path: Path = IGNORE_FILE) -> list[str]:
    """Advisory ids listed in the ignore file, one per line, after which a '#' gives the reason."""
    if not path.exists():
        return []
    return [line.split("#", 1)[0].strip() for line in path.read_text().splitlines() if line.split("#", 1)[0].strip()]


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    pip_audit = Path(sys.executable).with_name("pip-audit")
    with tempfile.TemporaryDirectory() as tmp:
        report_path = Path(tmp) / "audit.json"
        cmd = [str(pip_audit), "--skip-editable", "--progress-spinner", "off", "-f", "json", "-o", str(report_path)]
        for vuln in ignored_ids():
            cmd += ["--ignore-vuln", vuln]
        completed = subprocess.run(cmd, capture_output=True, text=True)
        if not report_path.exists():
            logger.error("pip-audit failed (exit %d): %s", completed.returncode, completed.stderr[-2000:])
            return 2
        report = json.loads(report_path.read_text())
    return verdict(report)


def verdict(report: dict[str, Any]) -> int:
    """The exit status for a pip-audit JSON report: 1 when an audited package has a known vulnerability."""
    deps = report.get("dependencies", [])
    audited = [d for d in deps if "skip_reason" not in d]
    vulnerable = [d for d in audited if d.get("vulns")]
    for dep in vulnerable:
        for vuln in dep["vulns"]:
            logger.error("%s %s: %s (fixed in %s)", dep["name"], dep["version"], vuln["id"],
                         ", ".join(vuln.get("fix_versions") or []) or "no release yet")
    if not audited:
        logger.warning("no package could be audited: PyPI's advisory data is out of reach from this machine "
                       "(%d packages skipped)", len(deps))
        return 0
    logger.info("%d packages audited, %d skipped, %d with known vulnerabilities", len(audited),
                len(deps) - len(audited), len(vulnerable))
    return 1 if vulnerable else 0


if __name__ == "__main__":
    sys.exit(main())
