#!/usr/bin/env bash
# Installs Latchkey as a systemd service, or removes it with --uninstall.
#
#   sudo scripts/install-systemd.sh              install or upgrade (safe to run again)
#   sudo scripts/install-systemd.sh --uninstall  remove the service; keep data and settings
#
# Run it from a checkout. It copies the built app to $PREFIX, installs production
# dependencies there, creates the service user, the env file (from .env.example, only if
# absent) and the unit, and enables the unit. An upgrade restarts a running service.
# The data directory (/var/lib/latchkey) is never touched: it holds the registered clients
# and live grants, and deleting it would force every connector to reconnect.
#
# The paths below can be overridden from the environment, for packaging and for the test
# in test/deploy/install-systemd.test.ts; the unit file hard-codes the defaults.
set -euo pipefail

PREFIX="${LATCHKEY_PREFIX:-/opt/latchkey}"
ETC_DIR="${LATCHKEY_ETC_DIR:-/etc/latchkey}"
UNIT_DIR="${LATCHKEY_UNIT_DIR:-/etc/systemd/system}"
STATE_DIR="${LATCHKEY_STATE_DIR:-/var/lib/latchkey}"
BIN_DIR="${LATCHKEY_BIN_DIR:-/usr/local/bin}"
SERVICE_USER="${LATCHKEY_USER:-latchkey}"
SYSTEMCTL="${LATCHKEY_SYSTEMCTL:-systemctl}"
UNIT=latchkey.service

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ENV_FILE="$ETC_DIR/latchkey.env"

say() { printf 'latchkey-install: %s\n' "$*"; }
die() { printf 'latchkey-install: error: %s\n' "$*" >&2; exit 1; }

# systemctl fails when systemd is not PID 1 (containers, chroots); the files are still
# installed correctly, so warn instead of aborting half-way.
run_systemctl() {
  if ! "$SYSTEMCTL" "$@"; then
    say "warning: '$SYSTEMCTL $*' failed (is systemd running?); run it yourself later"
  fi
}

do_uninstall() {
  run_systemctl disable --now "$UNIT"
  rm -f "$UNIT_DIR/$UNIT" "$BIN_DIR/latchkey"
  run_systemctl daemon-reload
  rm -rf "$PREFIX"
  say "removed the service, $PREFIX and $BIN_DIR/latchkey"
  say "kept: $STATE_DIR (data), $ENV_FILE (settings) and the user '$SERVICE_USER'"
  say "delete them by hand only if you never want these registrations back"
}

do_install() {
  local node
  node="$(command -v node)" || die "node is not on PATH; install Node.js 20 or newer first"
  "$node" -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' \
    || die "Node.js 20 or newer is required (found $("$node" --version))"
  command -v npm >/dev/null || die "npm is not on PATH"

  if [[ ! -f "$SRC/dist/index.js" || ! -f "$SRC/dist/cli.js" ]]; then
    say "building in $SRC"
    (cd "$SRC" && npm ci && npm run build)
  fi

  if ! getent group "$SERVICE_USER" >/dev/null; then
    groupadd --system "$SERVICE_USER"
  fi
  if ! id -u "$SERVICE_USER" >/dev/null 2>&1; then
    useradd --system --gid "$SERVICE_USER" --home-dir "$STATE_DIR" --no-create-home \
      --shell /usr/sbin/nologin --comment "Latchkey OAuth server" "$SERVICE_USER"
    say "created system user $SERVICE_USER"
  fi

  # The app is root-owned and read-only to the service: a compromised daemon cannot
  # rewrite its own code.
  install -d -m 0755 -o root -g root "$PREFIX"
  rm -rf "$PREFIX/dist" "$PREFIX/views" "$PREFIX/public"
  cp -R "$SRC/dist" "$SRC/views" "$SRC/public" "$PREFIX/"
  install -m 0644 "$SRC/package.json" "$SRC/package-lock.json" "$PREFIX/"
  if [[ -d "$SRC/docs" ]]; then rm -rf "$PREFIX/docs" && cp -R "$SRC/docs" "$PREFIX/"; fi
  # Reinstall dependencies only when the lock file changed. --ignore-scripts: the
  # "prepare" script builds with TypeScript, a dev dependency that is not installed here.
  local lock_sum
  lock_sum="$(sha256sum "$PREFIX/package-lock.json" | cut -d' ' -f1)"
  if [[ ! -d "$PREFIX/node_modules" || "$(cat "$PREFIX/.lock-sha256" 2>/dev/null)" != "$lock_sum" ]]; then
    say "installing production dependencies in $PREFIX"
    (cd "$PREFIX" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund)
    echo "$lock_sum" > "$PREFIX/.lock-sha256"
  fi
  chown -R root:root "$PREFIX"
  chmod -R u+rwX,go+rX,go-w "$PREFIX"

  # The data directory: systemd creates it from StateDirectory=, but creating it here too
  # lets `latchkey doctor` and backups work before the first start.
  install -d -m 0700 -o "$SERVICE_USER" -g "$SERVICE_USER" "$STATE_DIR"

  install -d -m 0750 -o root -g "$SERVICE_USER" "$ETC_DIR"
  if [[ ! -f "$ENV_FILE" ]]; then
    # EnvironmentFile= overrides Environment=, so the example's development data dir
    # (.oauth_data, relative and read-only under ProtectSystem=strict) must not survive.
    sed -e "s#^OAUTH_DATA_DIR=.*#OAUTH_DATA_DIR=$STATE_DIR#" "$SRC/.env.example" > "$ENV_FILE.tmp"
    install -m 0640 -o root -g "$SERVICE_USER" "$ENV_FILE.tmp" "$ENV_FILE"
    rm -f "$ENV_FILE.tmp"
    say "created $ENV_FILE from .env.example: set OAUTH_ISSUER_URL and OAUTH_PIN_HASH (latchkey hash-pin)"
    FIRST_INSTALL=1
  else
    # Keep the owner's settings; only repair ownership and mode (it holds the PIN hash and
    # the introspection secret).
    chown root:"$SERVICE_USER" "$ENV_FILE"
    chmod 0640 "$ENV_FILE"
  fi

  install -d -m 0755 "$UNIT_DIR"
  sed -e "s#/usr/bin/node #$node #" \
      -e "s#/opt/latchkey#$PREFIX#g" \
      -e "s#/etc/latchkey/latchkey.env#$ENV_FILE#" \
      -e "s#^User=latchkey#User=$SERVICE_USER#" \
      -e "s#^Group=latchkey#Group=$SERVICE_USER#" \
      "$SRC/scripts/latchkey.service" > "$UNIT_DIR/$UNIT.tmp"
  chmod 0644 "$UNIT_DIR/$UNIT.tmp"
  mv "$UNIT_DIR/$UNIT.tmp" "$UNIT_DIR/$UNIT"

  install -d -m 0755 "$BIN_DIR"
  printf '#!/bin/sh\nexec "%s" "%s/dist/cli.js" "$@"\n' "$node" "$PREFIX" > "$BIN_DIR/latchkey"
  chmod 0755 "$BIN_DIR/latchkey"

  run_systemctl daemon-reload
  run_systemctl enable "$UNIT"
  if [[ "${FIRST_INSTALL:-0}" == 1 ]]; then
    say "installed. Edit $ENV_FILE, then: systemctl start latchkey && latchkey doctor --env-file $ENV_FILE"
  elif "$SYSTEMCTL" is-active --quiet "$UNIT" 2>/dev/null; then
    run_systemctl restart "$UNIT"
    say "upgraded and restarted $UNIT"
  else
    say "installed. Start it with: systemctl start latchkey"
  fi
}

[[ "$(id -u)" == 0 ]] || die "run as root (sudo $0 $*)"
case "${1:-}" in
  --uninstall) do_uninstall ;;
  "") do_install ;;
  *) die "unknown option '$1' (use no option to install, --uninstall to remove)" ;;
esac
