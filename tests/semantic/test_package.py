"""The package boundary: ``import rgruntime`` stays light; the semantic package's exports exist."""

from __future__ import annotations

import subprocess
import sys

import pytest

import rgruntime.semantic


def test_import_rgruntime_does_not_load_the_semantic_stack() -> None:
    code = (
        "import sys, rgruntime; "
        "heavy = [m for m in ('rgruntime.semantic', 'onnxruntime', 'hnswlib', 'tokenizers') "
        "if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""


@pytest.mark.parametrize("name", rgruntime.semantic.__all__)
def test_every_exported_name_exists(name: str) -> None:
    assert getattr(rgruntime.semantic, name, None) is not None


def test_the_vocabulary_ships_with_its_notice() -> None:
    from importlib import resources

    data = resources.files("rgruntime.semantic") / "data"
    assert (data / "minilm-vocab.txt").read_text().splitlines()[:1] == ["[PAD]"]
    assert "Apache" in (data / "NOTICE").read_text()
