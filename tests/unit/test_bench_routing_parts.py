"""`python -m bench.routing --parts` names what it measures; an unknown part is refused
before anything starts."""

from __future__ import annotations

import pytest
from bench import routing


def test_an_unknown_part_is_refused_with_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert routing._main(["--parts", "pipeline,nonsense"]) == 2
    err = capsys.readouterr().err
    assert "nonsense" in err and "routing, pipeline, scaling" in err
