"""welcome-pipeline's embedded local cloud: emulator, deploy-from-template, Lambda runtime, CLI."""

import sys
from pathlib import Path

# The functions' shared code (functions/common) is read by the CLI too (job records, outbox, DLQ);
# Lambda imports it from the CodeUri root, so the CLI does the same.
_FUNCTIONS = str(Path(__file__).resolve().parent.parent / "functions")
if _FUNCTIONS not in sys.path:
    sys.path.append(_FUNCTIONS)
