"""`make mutation`: mutation testing of the modules that carry the at-most-once promise, with mutmut.

mutmut plants one small bug at a time (a condition negated, a number off by one, a call dropped...) and runs
the fast tests (the domain on in-memory fakes, seconds) against it: a mutant the tests fail on is killed; one
they pass on survived, and is either a missing test or a change that alters nothing a user can see, which
`equivalents.txt` beside this file lists, each with one line of why (reviewed by hand).

mutmut names a mutant after its module's path from the project root. The Lambda code lives under functions/
and is imported as `common.*` (functions/ is the template's CodeUri root), so the run happens in a staging
folder, .mutation/, where functions/common is common/. Prints the score per module and every survivor not
known to be equivalent; exits 1 when such a survivor exists, a module scores under the target, or an entry of
equivalents.txt no longer survives (an edit renumbered its function).

    python tests/mutation/run.py [--modules common/domain/sending.py ...] [--max-children N]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess  # runs mutmut  # nosec B404
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STAGING = ROOT / ".mutation"
EQUIVALENTS = Path(__file__).with_name("equivalents.txt")
TARGET = 0.95
MODULES = ["common/domain/sending.py", "common/domain/ledger.py", "common/domain/contacts.py",
           "common/domain/parsing.py", "common/domain/feedback.py", "common/adapters/sqs.py"]
# The fast tests: the domain on in-memory fakes, the queue adapter on a fake client, and the ledger and jobs
# contract on both the fakes and the DynamoDB adapters (moto in-process): seconds, not minutes.
TESTS = ["tests/unit", "tests/adapters/test_queue.py", "tests/contract"]
_RESULT = re.compile(r"^\s*(?P<mutant>[\w.]+__mutmut_\d+): (?P<status>[\w ]+?)\s*$")


def stage(modules: list[str]) -> None:
    """.mutation/: common/ (functions/common), localcloud/ and tests/, with a pytest and mutmut configuration."""
    if STAGING.exists():
        shutil.rmtree(STAGING)
    STAGING.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "functions" / "common", STAGING / "common", ignore=ignore)
    for folder in ("localcloud", "tests"):
        shutil.copytree(ROOT / folder, STAGING / folder, ignore=ignore)
    shutil.copy(ROOT / "template.yaml", STAGING / "template.yaml")  # tests/unit/pipeline.py deploys it in moto
    quoted = ", ".join(f'"{m}"' for m in modules)
    tests = ", ".join(f'"{t}"' for t in TESTS)
    (STAGING / "pyproject.toml").write_text(
        "[tool.pytest.ini_options]\n"
        'pythonpath = ["."]\n'
        'addopts = "-q -p no:cacheprovider"\n'
        "timeout = 120\n\n"
        "[tool.mutmut]\n"
        f"source_paths = [{quoted}]\n"
        'also_copy = ["common", "localcloud", "template.yaml"]\n'
        f"pytest_add_cli_args_test_selection = [{tests}]\n")


def equivalents() -> dict[str, str]:
    """mutant name -> why it changes nothing a user can see."""
    known = {}
    for line in EQUIVALENTS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, why = line.partition(" ")
            known[name] = why.strip()
    return known


def module_of(mutant: str) -> str:
    """common.domain.sending.x_deliver_batch__mutmut_3 -> common/domain/sending.py"""
    return "/".join(mutant.split(".")[:3]) + ".py"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modules", nargs="+", default=MODULES)
    parser.add_argument("--max-children", type=int, default=2)
    parser.add_argument("--mutmut", default=str(ROOT / ".venv-mutation" / "bin" / "mutmut"))
    args = parser.parse_args()
    stage(args.modules)
    run = subprocess.run([args.mutmut, "run", "--max-children", str(args.max_children)],  # nosec B603
                         cwd=STAGING, capture_output=True, text=True)
    if run.returncode != 0:
        print(run.stdout[-3000:], run.stderr[-3000:], file=sys.stderr)
        return run.returncode
    listing = subprocess.run([args.mutmut, "results", "--all", "true"],  # nosec B603
                             cwd=STAGING, capture_output=True, text=True, check=True).stdout
    statuses: dict[str, Counter[str]] = defaultdict(Counter)
    known = equivalents()
    unexplained, equivalent_now = [], set()
    for line in listing.splitlines():
        if match := _RESULT.match(line):
            mutant, status = match["mutant"], match["status"]
            if status not in ("killed", "timeout"):  # "no tests" (no fast test runs this code) and the rest
                status = "survived"                # count as survivors: nothing leaves the score unseen
            if status == "survived" and mutant in known:
                status = "equivalent"
                equivalent_now.add(mutant)
            statuses[module_of(mutant)][status] += 1
            if status == "survived":
                unexplained.append(mutant)
    print(f"{'module':<32} {'mutants':>7} {'killed':>7} {'equiv.':>7} {'survived':>8} {'score':>6}")
    failing = False
    for module in args.modules:
        counts = statuses.get(module, Counter())
        total = sum(counts.values())
        killed = counts["killed"] + counts["timeout"]
        scored = total - counts["equivalent"]
        score = killed / scored if scored else 1.0
        failing |= score < TARGET
        print(f"{module:<32} {total:>7} {killed:>7} {counts['equivalent']:>7} {counts['survived']:>8} "
              f"{score:>6.1%}")
    for mutant in unexplained:
        print(f"survived: {mutant}  (see: cd .mutation && {args.mutmut} show {mutant})")
    # An entry whose mutant is now killed, or gone, names another change since an edit renumbered the function.
    stale = sorted(m for m in known if module_of(m) in args.modules and m not in equivalent_now)
    for mutant in stale:
        print(f"stale: {mutant} is listed in {EQUIVALENTS.name} but did not survive: review the entry")
    return 1 if failing or unexplained or stale else 0


if __name__ == "__main__":
    sys.exit(main())
