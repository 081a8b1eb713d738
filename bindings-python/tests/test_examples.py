"""The README's example runs as printed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "python" / "quickstart.py"


def test_quickstart_runs() -> None:
    out = subprocess.run([sys.executable, str(QUICKSTART)], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.splitlines() == [
        "live key reaches def4567890",
        "400 NO_STAGING_DEPLOYMENT No staging deployment found. Please specify Deployment-Id header.",
        "live key reaches def4567890 from the store",
    ]
