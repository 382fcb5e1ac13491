#!/usr/bin/env bash
# Deploy one image to Kubernetes: migrations first, then the API, worker and beat.
#
#   deploy/kubernetes/rollout.sh registry.example.com/{{ cookiecutter.project_slug }}@sha256:<digest> [overlay]
#
# Plain kustomize has no "run this before the rollout" hook, so this script orders it:
#   1. delete the previous release's migrations Job (a Job's pod template cannot be changed);
#   2. apply the settings and the new Job, and wait until it completes (a failed migration stops
#      here, with the old release still serving);
#   3. apply everything, and wait for the API, worker and beat rollouts.
# The image is taken by digest only: a tag can be moved, a digest is the image that was scanned.
# Environment: KUBECTL (default `kubectl`), MIGRATION_TIMEOUT_SECONDS (default 900).
set -euo pipefail

image="${1:?usage: rollout.sh IMAGE@sha256:DIGEST [overlay directory]}"
here="$(cd "$(dirname "$0")" && pwd)"
overlay="$(cd "${2:-$here/overlays/production}" && pwd)"
kubectl="${KUBECTL:-kubectl}"
name="{{ cookiecutter.project_slug }}"

if [[ ! "$image" =~ ^[^@]+@sha256:[0-9a-f]{64}$ ]]; then
  echo "rollout.sh: give the image by digest (NAME@sha256:<64 hex digits>), not by tag: $image" >&2
  exit 2
fi

# A throwaway overlay on top of the chosen one that sets the image: the repository stays as it is.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# kustomize takes only relative resource paths.
relative="$(python3 -c 'import os, sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' "$overlay" "$work")"
cat >"$work/kustomization.yaml" <<KUSTOMIZATION
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $relative
images:
  - name: $name
    newName: ${image%@*}
    digest: ${image#*@}
KUSTOMIZATION
"$kubectl" kustomize "$work" >"$work/all.yaml"

# `kubectl wait` takes one condition: a failed Job would be waited on until the timeout.
wait_for_migrations() {
  local deadline=$((SECONDS + ${MIGRATION_TIMEOUT_SECONDS:-900})) state
  while ((SECONDS < deadline)); do
    state="$("$kubectl" get job "$name-migrate" --namespace "$namespace" \
      --output 'jsonpath={.status.conditions[?(@.status=="True")].type}')"
    case "$state" in
      *Complete*) return 0 ;;
      *Failed*)
        "$kubectl" logs job/"$name-migrate" --namespace "$namespace" >&2 || true
        echo "rollout.sh: migrations failed; the previous release keeps serving" >&2
        exit 1
        ;;
    esac
    sleep "${POLL_SECONDS:-5}"
  done
  echo "rollout.sh: migrations did not finish in time; the previous release keeps serving" >&2
  exit 1
}
namespace="$(sed -n 's/^  namespace: //p' "$work/all.yaml" | head -n 1)"

"$kubectl" delete job "$name-migrate" --namespace "$namespace" --ignore-not-found --wait=true
"$kubectl" apply -f "$work/all.yaml" --selector 'app.kubernetes.io/component in (config, migrations)'
wait_for_migrations
"$kubectl" apply -f "$work/all.yaml"
for component in api worker beat; do
  "$kubectl" rollout status deployment/"$name-$component" --namespace "$namespace" --timeout=10m
done
