#!/usr/bin/env bash
for host in web1 web2 web3; do
  if ssh "$host" 'systemctl is-active --quiet nginx'; then
    echo "$host: ok"
  else
    echo "$host: nginx down" >&2
  fi
done
