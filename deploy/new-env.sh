#!/bin/sh
# Write .env for docker-compose.yaml from .env.example, with every secret generated.
#
#   sh deploy/new-env.sh [target]     (default: .env beside docker-compose.yaml)
#
# It never overwrites an existing file: a deployment's Fernet key must outlive it, or every stored
# connection becomes unreadable. Needs only openssl and a POSIX shell.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
target=${1:-"$root/.env"}
if [ -e "$target" ]; then
  echo "$target exists; not overwritten (a new Fernet key would make stored connections unreadable)" >&2
  exit 1
fi
hex() { openssl rand -hex "$1"; }
fernet=$(openssl rand -base64 32 | tr '+/' '-_')
umask 077
sed \
  -e "s|^AIRFLOW_FERNET_KEY=\$|AIRFLOW_FERNET_KEY=$fernet|" \
  -e "s|^AIRFLOW_JWT_SECRET=\$|AIRFLOW_JWT_SECRET=$(hex 32)|" \
  -e "s|^AIRFLOW_API_SECRET_KEY=\$|AIRFLOW_API_SECRET_KEY=$(hex 32)|" \
  -e "s|^AIRFLOW_JWT_ISSUER=\$|AIRFLOW_JWT_ISSUER=judgeflow-$(hex 6)|" \
  -e "s|^POSTGRES_PASSWORD=\$|POSTGRES_PASSWORD=$(hex 24)|" \
  -e "s|^JUDGEFLOW_WAREHOUSE_PASSWORD=\$|JUDGEFLOW_WAREHOUSE_PASSWORD=$(hex 24)|" \
  -e "s|^AIRFLOW_UID=.*|AIRFLOW_UID=$(id -u)|" \
  "$root/.env.example" >"$target"
echo "wrote $target: now set ANTHROPIC_API_KEY in it (or JUDGEFLOW_EMULATOR_URL for a trial)"
