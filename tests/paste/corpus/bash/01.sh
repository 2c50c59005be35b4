#!/bin/bash
set -euo pipefail

BACKUP_DIR="/var/backups/db"
STAMP=$(date +%Y%m%d-%H%M%S)

mkdir -p "$BACKUP_DIR"
pg_dump mydb | gzip > "$BACKUP_DIR/mydb-$STAMP.sql.gz"
find "$BACKUP_DIR" -name '*.sql.gz' -mtime +14 -delete
echo "backup done: $STAMP"
