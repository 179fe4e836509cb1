import sys

import pytest


def test_lazy_package_imports_a_name_on_first_use_only():
    for name in [m for m in sys.modules if m.startswith("lungus.sim")]:
        del sys.modules[name]
    import lungus.sim

    assert "lungus.sim.dataset" not in sys.modules
    assert callable(lungus.sim.write_dataset)
    assert "lungus.sim.dataset" in sys.modules
    assert "write_dataset" in dir(lungus.sim)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        lungus.sim.nothing  # noqa: B018
