"""The image's smoke test (test_image.py) needs the image `make image` builds, minutes
of work, so the whole suite (`make test`) does not collect it: `make image-smoke`
sets PIPELENS_IMAGE_SMOKE=1 and runs it. By hand: name the file (an explicit path is
always collected), through deploy/local/with-env.sh for the services' settings:

    bash deploy/local/with-env.sh .venv/bin/python -m pytest tests/deploy/test_image.py -v
"""

import os

collect_ignore = [] if os.environ.get("PIPELENS_IMAGE_SMOKE") == "1" else ["test_image.py"]
