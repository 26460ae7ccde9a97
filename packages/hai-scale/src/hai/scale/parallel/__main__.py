"""``torchrun --nproc-per-node N -m hai.scale.parallel [options]``: one rank of a BNN training job."""

import sys

from hai.scale.parallel.launch import worker_main

if __name__ == "__main__":
    sys.exit(worker_main())
