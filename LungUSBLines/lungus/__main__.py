"""`python -m lungus` (and `torchrun -m lungus train ...`)."""

from lungus.cli import main
from lungus.model_calls import exit_process

exit_process(main())  # os._exit while a timed-out model call still runs
