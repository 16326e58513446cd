"""Tests of the container images (docker/, scripts/build-images.sh) and compose.dev.yaml."""
