#!/usr/bin/env bash
# Static checks of the deployment files with the real tools: docker-compose, promtool, and the dashboard checker.
# Exit 77 (ctest: skipped) when a tool is missing; deploy/install-deps.sh installs them.
set -euo pipefail
cd "$(dirname "$0")/../.."
for tool in docker-compose promtool /usr/bin/python3; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed (deploy/install-deps.sh installs it)"; exit 77; }
done

echo "== docker-compose config (both profiles, with and without .env.example)"
for profile in gpu cpu gpu,replicas cpu,replicas; do
  COMPOSE_PROFILES=$profile docker-compose -f docker-compose.yml config -q
  COMPOSE_PROFILES=$profile docker-compose --env-file .env.example -f docker-compose.yml config -q
done
# Compose v2 (Debian 13) lists and renders only the services of the active profiles; v1 (Debian 12) all of them.
services=$(COMPOSE_PROFILES=gpu,cpu,replicas docker-compose -f docker-compose.yml config --services | sort | tr '\n' ' ')
[ "$services" = "facet-replica facet-server-cpu facet-server-gpu grafana prometheus " ] || { echo "unexpected services: $services"; exit 1; }
rendered=$(COMPOSE_PROFILES=gpu docker-compose -f docker-compose.yml config)
grep -q 'driver: nvidia' <<<"$rendered" || { echo "no NVIDIA GPU reservation"; exit 1; }

replicas=$(COMPOSE_PROFILES=cpu,replicas docker-compose -f docker-compose.yml config)
grep -q 'FACET_FOLLOW: facet-server:7070' <<<"$replicas" || { echo "replicas do not follow facet-server"; exit 1; }

echo "== images from Debian's packages alone"
# No archive fetched from a URL and no second apt repository in any image's build (comments aside).
for dockerfile in Dockerfile deploy/prometheus/Dockerfile; do
  if grep -vE '^[[:space:]]*#' "$dockerfile" | grep -nE 'https?://|(curl|wget)[[:space:]]+-|sources\.list|apt-key|gpg '; then
    echo "$dockerfile fetches from a URL or adds an apt source"; exit 1
  fi
done

echo "== deploy/k8s"
/usr/bin/python3 tests/deploy/check_k8s.py deploy/k8s/*.yaml

echo "== promtool"
promtool check config deploy/prometheus/prometheus.yml
promtool check rules deploy/prometheus/alerts.yml
(cd deploy/prometheus && promtool test rules alerts_test.yml)

echo "== dashboards"
/usr/bin/python3 tests/deploy/check_dashboards.py deploy/grafana/dashboards/*.json
echo "deploy checks passed"
