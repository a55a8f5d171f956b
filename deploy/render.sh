#!/bin/sh
# Regenerate the committed release files from the kustomize sources (needs only kubectl).
# tests/deploy checks that the committed files equal this output.
set -eu
cd "$(dirname "$0")"
kubectl kustomize base >release/components.yaml
kubectl kustomize overlays/high-availability >release/high-availability.yaml
