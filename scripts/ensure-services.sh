#!/usr/bin/env bash
# Make sure the services the tests use are reachable; start or install them when we can (root on Debian).
# Under CI=true a service that cannot be made reachable fails the run loudly; tests never skip.
set -euo pipefail

reachable() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

ensure_postgres() {
  reachable 5432 && return 0
  echo "PostgreSQL is not answering on 127.0.0.1:5432; trying to start it"
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
  fi
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    hba=/etc/postgresql/$version/main/pg_hba.conf
    # The tests connect as postgres over TCP without a password, as on the development machines.
    if ! grep -q "telemetra-tests" "$hba"; then
      sed -i '1i host all all 127.0.0.1/32 trust # telemetra-tests' "$hba"
    fi
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 30); do reachable 5432 && break; sleep 1; done
    su postgres -c "psql -tAc \"SELECT 1 FROM pg_database WHERE datname='test'\"" | grep -q 1 \
      || su postgres -c "createdb test"
  fi
  reachable 5432 && return 0
  echo "ERROR: PostgreSQL is required on 127.0.0.1:5432 (trust auth, database 'test') and could not be started." >&2
  return 1
}

install_debian() {
  # Install Debian packages when we can (root with apt); otherwise say what is missing.
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    echo "ERROR: install the Debian packages: $*" >&2
    return 1
  fi
}

ensure_mosquitto() {
  # Tests also start brokers of their own from this binary (ACL and sync tests).
  [ -x /usr/sbin/mosquitto ] && [ -x /usr/bin/mosquitto_passwd ] || install_debian mosquitto mosquitto-clients
  reachable 1883 && return 0
  echo "Mosquitto is not answering on 127.0.0.1:1883; starting it"
  mosquitto -d -c /etc/mosquitto/mosquitto.conf || true
  for _ in $(seq 1 20); do reachable 1883 && return 0; sleep 0.5; done
  echo "ERROR: Mosquitto is required on 127.0.0.1:1883 and could not be started." >&2
  return 1
}

ensure_nats() {
  [ -x /usr/sbin/nats-server ] || install_debian nats-server
  reachable 4222 && return 0
  echo "NATS is not answering on 127.0.0.1:4222; starting it with JetStream"
  mkdir -p /var/lib/nats-server
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log || true
  for _ in $(seq 1 20); do reachable 4222 && return 0; sleep 0.5; done
  echo "ERROR: NATS with JetStream is required on 127.0.0.1:4222 and could not be started." >&2
  return 1
}

ensure_redis() {
  # Shared rate limits are tested with two servers against a real Redis.
  reachable 6379 && return 0
  command -v redis-server >/dev/null 2>&1 || install_debian redis-server
  echo "Redis is not answering on 127.0.0.1:6379; starting it"
  redis-server --bind 127.0.0.1 --port 6379 --daemonize yes --save "" || true
  for _ in $(seq 1 20); do reachable 6379 && return 0; sleep 0.5; done
  echo "ERROR: Redis is required on 127.0.0.1:6379 and could not be started." >&2
  return 1
}

ensure_postgres
ensure_mosquitto
ensure_nats
ensure_redis
