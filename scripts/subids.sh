#!/usr/bin/env bash
# Gives the invoking user (root when run by `make deps` as root) a range of
# subordinate uids and gids in /etc/subuid and /etc/subgid when it has none:
# what hoist's sandbox maps root inside a build to (README, "Security model").
# The range starts past every range already granted, so it is nobody else's.
set -euo pipefail
user=${1:-$(id -un)}
if grep -q "^${user}:" /etc/subuid 2>/dev/null && grep -q "^${user}:" /etc/subgid 2>/dev/null; then
  exit 0
fi
next=$(cat /etc/subuid /etc/subgid 2>/dev/null |
  awk -F: 'NF == 3 && $3 > 0 { end = $2 + $3; if (end > max) max = end } END { print (max > 100000 ? max : 100000) }')
last=$((next + 65535))
echo "subordinate ids for ${user}: ${next}-${last}"
${SUDO:-} usermod --add-subuids "${next}-${last}" --add-subgids "${next}-${last}" "$user"
