#!/usr/bin/env bash
# Builds foreman and writes the production tree the image runs into OUT:
#   OUT/packages/<name>/{package.json,dist}   the runtime packages (gateway, worker, the CLI when the
#                                             workspace has one, and what they depend on), no sources
#   OUT/node_modules/.pnpm                    their production dependencies, installed from the lockfile
#   OUT/bin/foreman                           the CLI, when there is one
# The Dockerfile runs this script, and CI runs it outside Docker, so the two cannot drift.
# Usage: docker/build.sh OUT   (OUT must be absent or empty)
set -euo pipefail
out=${1:?usage: docker/build.sh OUT (an absent or empty directory)}
cd "$(dirname "$0")/.."
started=$(date +%s)

# What the image runs; everything else (the simulator, the client library, tests, tools) stays out.
runtime=(@foreman/gateway @foreman/worker)
if [ -f packages/cli/package.json ]; then runtime+=(@foreman/cli); fi

# When no prebuilt better-sqlite3 binary can be had, node-gyp compiles it against this Node's own
# headers instead of downloading them (Debian's Node keeps them under /usr, the official images under
# /usr/local).
if [ -z "${npm_config_nodedir:-}" ]; then
  prefix=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
  if [ -f "$prefix/include/node/node.h" ]; then export npm_config_nodedir=$prefix; fi
fi

pnpm install --frozen-lockfile
pnpm build

if [ -e "$out" ] && [ -n "$(ls -A "$out")" ]; then
  echo "docker/build.sh: $out is not empty; give an absent or empty directory" >&2
  exit 1
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)

# The runtime packages and the workspace packages they depend on in production (dev-only links, such as a
# test dependency on the simulator, are not followed).
filters=()
for name in "${runtime[@]}"; do filters+=(--filter-prod "$name..."); done
mapfile -t packages < <(pnpm "${filters[@]}" list --depth -1 --json | node -e '
  const root = process.cwd();
  const list = JSON.parse(require("fs").readFileSync(0, "utf8"));
  for (const p of list) {
    if (p.name === "@foreman/ollama-sim") {
      console.error("docker/build.sh: the simulator is a production dependency of a runtime package");
      process.exit(1);
    }
    console.log(require("path").relative(root, p.path));
  }')
[ "${#packages[@]}" -gt 0 ] || { echo "docker/build.sh: no runtime package found" >&2; exit 1; }

# Each package's manifest and its built code: what runs, not what a publish ships (the client also
# publishes its TypeScript sources for source maps; the image needs only dist).
for dir in "${packages[@]}"; do
  mkdir -p "$out/$dir"
  cp "$dir/package.json" "$out/$dir/"
  cp -R "$dir/dist" "$out/$dir/"
done

# Production dependencies of exactly those packages, from the same lockfile: a workspace of only them.
cp package.json pnpm-lock.yaml pnpm-workspace.yaml "$out/"
(cd "$out" && pnpm install --prod --frozen-lockfile --prefer-offline --reporter=append-only)

# Only what runs stays: no install bookkeeping, no bin shims (they hold the build machine's paths), no type
# declarations or source maps of sources that are not shipped, and of better-sqlite3 only its addon (its
# SQLite sources and object files are most of its size).
rm -f "$out/package.json" "$out/pnpm-lock.yaml" "$out/pnpm-workspace.yaml" "$out"/node_modules/.modules.yaml \
  "$out"/node_modules/.pnpm-workspace-state*.json "$out"/node_modules/.pnpm/lock.yaml
find "$out" -type d -name .bin -path '*/node_modules/.bin' -prune -exec rm -rf {} +
find "$out/packages" -path '*/dist/*' \( -name '*.d.ts' -o -name '*.d.ts.map' -o -name '*.js.map' \) -delete
for addon in "$out"/node_modules/.pnpm/better-sqlite3@*/node_modules/better-sqlite3; do
  [ -f "$addon/build/Release/better_sqlite3.node" ] || { echo "docker/build.sh: $addon has no compiled addon" >&2; exit 1; }
  rm -rf "$addon/deps" "$addon/src" "$addon/binding.gyp"
  find "$addon/build" -mindepth 1 -maxdepth 1 ! -name Release -exec rm -rf {} +
  find "$addon/build/Release" -mindepth 1 ! -name better_sqlite3.node -exec rm -rf {} +
done

# The CLI on PATH (the image puts OUT/bin there). exec: the shell is replaced by node, so signals reach it.
if [ -f "$out/packages/cli/package.json" ]; then
  entry=$(node -p 'const b = require("'"$out"'/packages/cli/package.json").bin; typeof b === "string" ? b : b.foreman')
  mkdir -p "$out/bin"
  cat >"$out/bin/foreman" <<EOF
#!/bin/sh
exec node "\$(dirname "\$(readlink -f "\$0")")/../packages/cli/${entry#./}" "\$@"
EOF
  chmod 755 "$out/bin/foreman"
fi

# Refuse a tree that would not run, or that carries what must not ship.
for forbidden in typescript mocha tsx @biomejs+biome @foreman+ollama-sim; do
  if compgen -G "$out/node_modules/.pnpm/$forbidden@*" >/dev/null; then
    echo "docker/build.sh: $forbidden is in the production tree" >&2
    exit 1
  fi
done
if [ -e "$out/packages/ollama-sim" ]; then echo "docker/build.sh: the simulator is in the production tree" >&2; exit 1; fi
(cd "$out/packages/shared" && node -e 'new (require("better-sqlite3"))(":memory:").close()')

echo "docker/build.sh: ${packages[*]} with production dependencies in $out" \
  "($(du -sm "$out" | cut -f1) MB, $(($(date +%s) - started)) s)"
