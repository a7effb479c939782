"""The architecture holds: packages import only downward (import-linter), and the CLI starts light."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_import_contracts_are_kept():
    """pyproject.toml [tool.importlinter]: the layers and no cycles (also run by `make lint`)."""
    lint = Path(sys.executable).parent / "lint-imports"
    r = subprocess.run([str(lint), "--no-cache", "--config", str(ROOT / "pyproject.toml")], capture_output=True,
                       text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:]
    assert "2 kept, 0 broken" in r.stdout


def test_cli_help_imports_no_heavy_library():
    """Function-local imports exist for this: building every command's --help loads no torch, scipy, sklearn."""
    code = ("import sys; from reasonalign.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'transformers', 'peft', 'scipy', 'sklearn', 'sentence_transformers', "
            "'flask', 'waitress') "
            "if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
