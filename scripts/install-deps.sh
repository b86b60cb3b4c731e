#!/usr/bin/env bash
# Installs what building and testing simclr needs, when it is missing:
# a C compiler, oneDNN, libjpeg-turbo, PIL (decoding is checked against it)
# and Fashion-MNIST (Debian packages) and the Go modules.
# Usage: scripts/install-deps.sh [extra Debian packages...]
set -euo pipefail

packages=(gcc libdnnl-dev libjpeg62-turbo-dev python3-pil dataset-fashion-mnist "$@")
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
	echo "installing Debian packages: ${missing[*]}"
	sudo=""
	if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq -o DPkg::Lock::Timeout=600 || echo "apt-get update failed; trying the install with the current package lists"
	# Wait for another apt (a second make target, an unattended upgrade)
	# rather than fail on its lock.
	$sudo apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}"
fi

if ! command -v go >/dev/null; then
	echo "Go is not installed: install Go 1.26 or newer (https://go.dev/dl/) and rerun" >&2
	exit 1
fi
go mod download
