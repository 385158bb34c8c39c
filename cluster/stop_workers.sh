#!/usr/bin/env bash
# Stop Ray on every worker machine of a cluster/local.yaml cluster, from its head:
#   ray exec cluster/local.yaml 'bash ~/dnt_rllib/cluster/stop_workers.sh'
# before `ray down cluster/local.yaml` (docs/cluster.md, step 9). `ray down` runs `ray stop`
# on the head only: Ray's local provider "terminates" a worker by a note in its state file,
# and the worker's raylet, once it has lost the head, leaves its agents and log monitor
# running. Reads the worker IPs and the SSH user from the launcher's config on the head
# (~/ray_bootstrap_config.yaml) and logs in with the key the launcher put there.
set -euo pipefail
read -r user ips < <(python - ~/ray_bootstrap_config.yaml <<'PY'
import sys

import yaml

config = yaml.safe_load(open(sys.argv[1]))
print(config["auth"]["ssh_user"], " ".join(config["provider"].get("worker_ips") or []))
PY
)
for ip in $ips; do
  echo "ray stop on $ip"
  ssh -n -i ~/ray_bootstrap_key.pem -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o ConnectTimeout=10 -o LogLevel=ERROR "$user@$ip" 'RAY_AUTH_MODE=token ~/venv/bin/ray stop'
done
