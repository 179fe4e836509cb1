import subprocess
import sys

SCRIPT = """
import sys
import lungus.sim
assert "lungus.sim.dataset" not in sys.modules, "imported too early"
assert callable(lungus.sim.write_dataset)
assert "lungus.sim.dataset" in sys.modules
assert "write_dataset" in dir(lungus.sim)
try:
    lungus.sim.nothing
except AttributeError as error:
    assert "no attribute 'nothing'" in str(error)
else:
    raise SystemExit("no AttributeError")
"""


def test_lazy_package_imports_a_name_on_first_use_only():
    completed = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
