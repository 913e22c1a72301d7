"""`make test` as a new user runs it: what it does before the suite is said before it is done."""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_make_test_says_it_installs_chromium_before_it_does():
    recipe = subprocess.run(["make", "-n", "chromium"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "installing chromium" in recipe, recipe
    assert recipe.index("installing chromium") < recipe.index("apt-get install"), recipe
