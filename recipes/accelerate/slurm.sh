#!/usr/bin/env bash
# One tsvq training stage on several Slurm nodes: one task per node, each starting `accelerate launch` with its own
# machine rank; node 0 is the rendezvous. Submit from the project folder, e.g.
#   sbatch --nodes 2 --gpus-per-node 4 recipes/accelerate/slurm.sh codec recipes/mitbih/codec.yaml
# Every node must see the window store and the output_dir (a shared filesystem). Resubmitting the same job after
# it was stopped resumes from the newest finished checkpoint. CPU-only nodes: export ACCELERATE_USE_CPU=1 and set
# GPUS_PER_NODE to the processes wanted per node.
#SBATCH --job-name=tsvq-train
#SBATCH --ntasks-per-node=1
#SBATCH --exclusive
set -euo pipefail
STAGE=${1:?stage: codec, diffusion, wavenet or maskgit}
CONFIG=${2:?stage config, e.g. recipes/mitbih/codec.yaml}
GPUS_PER_NODE=${GPUS_PER_NODE:-${SLURM_GPUS_ON_NODE:-1}}
MAIN_NODE=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
PORT=${PORT:-29500}
srun bash -c "accelerate launch --config_file recipes/accelerate/multi_node.yaml \
    --num_machines $SLURM_NNODES --num_processes $((SLURM_NNODES * GPUS_PER_NODE)) \
    --machine_rank \$SLURM_NODEID --main_process_ip $MAIN_NODE --main_process_port $PORT \
    -m tsvq.cli train $STAGE --config $CONFIG"
