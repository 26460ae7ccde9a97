"""``torchrun --nproc-per-node N -m hai.scale.parallel [options]``: one rank of a BNN training job."""

from hai.scale.parallel.launch import worker_main
from hai.scale.rank_exit import exit_rank

if __name__ == "__main__":
    exit_rank(worker_main())
