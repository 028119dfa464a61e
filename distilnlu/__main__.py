# Signal handlers first: a Ctrl-C during the (slow) imports then prints how to resume too.
from distilnlu.training.signals import install_process_handlers

install_process_handlers()

from distilnlu.cli import main  # noqa: E402

main()
