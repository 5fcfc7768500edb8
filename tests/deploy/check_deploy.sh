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
services=$(docker-compose -f docker-compose.yml config --services | sort | tr '\n' ' ')
[ "$services" = "facet-replica facet-server-cpu facet-server-gpu grafana prometheus " ] || { echo "unexpected services: $services"; exit 1; }
rendered=$(docker-compose -f docker-compose.yml config)
grep -q 'driver: nvidia' <<<"$rendered" || { echo "no NVIDIA GPU reservation"; exit 1; }

replicas=$(COMPOSE_PROFILES=cpu,replicas docker-compose -f docker-compose.yml config)
grep -q 'FACET_FOLLOW: facet-server:7070' <<<"$replicas" || { echo "replicas do not follow facet-server"; exit 1; }

echo "== deploy/k8s"
/usr/bin/python3 tests/deploy/check_k8s.py deploy/k8s/*.yaml

echo "== promtool"
promtool check config deploy/prometheus/prometheus.yml
promtool check rules deploy/prometheus/alerts.yml
(cd deploy/prometheus && promtool test rules alerts_test.yml)

echo "== dashboards"
/usr/bin/python3 tests/deploy/check_dashboards.py deploy/grafana/dashboards/*.json
echo "deploy checks passed"
