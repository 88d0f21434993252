#!/usr/bin/env bash
# Runs scripts/backup once a day, at ALMONER_BACKUP_AT in the container's time zone (TZ), forever: the
# command of the backup image (deploy/backup/Dockerfile), Compose's backup service. What is backed up,
# where to, the passphrase file, the retention and the metric file are scripts/backup's own settings
# (ALMONER_BACKUP_DIR, ALMONER_BACKUP_PASSPHRASE_FILE, ALMONER_BACKUP_KEEP_DAYS, ALMONER_BACKUP_METRICS_DIR,
# ALMONER_BACKUP_KEEP_LOCAL, the S3 destination ALMONER_BACKUP_S3_*; ALMONER_PG_*, ALMONER_DB_NAME,
# ALMONER_S3_*), passed through. A failed backup is logged and retried at the next day's time; the health
# check (and the AlmonerBackupStale alert, docs/runbook.md) tells.
#
#   almoner-backup-schedule          the loop
#   almoner-backup-schedule health   exit 0 when the last backup succeeded less than
#                                    ALMONER_BACKUP_MAX_AGE_HOURS (26) ago, or, before the first one, when
#                                    the loop started less than that ago: the container's health check
#
# ALMONER_BACKUP_AT (02:00)   HH:MM, local time
# ALMONER_BACKUP_BASE (0)     1: after each backup, also a base backup (scripts/backup --base), for point-in-time
#                             recovery when the server archives its WAL (docs/operations.md). Its failure is
#                             logged; the health check follows the daily backup only
# ALMONER_BACKUP_SCRIPT       scripts/backup (/app/scripts/backup in the image)
set -euo pipefail

at="${ALMONER_BACKUP_AT:-02:00}"
max_age_hours="${ALMONER_BACKUP_MAX_AGE_HOURS:-26}"
script="${ALMONER_BACKUP_SCRIPT:-/app/scripts/backup}"
metrics="${ALMONER_BACKUP_METRICS_DIR:?set ALMONER_BACKUP_METRICS_DIR: the health check reads the last success there}/almoner_backup.prom"
started="${ALMONER_BACKUP_METRICS_DIR}/schedule-started"
say() { printf '[almoner-backup] %s\n' "$*" >&2; }

if [[ "${1:-}" == health ]]; then
  last="$(sed -n 's/^almoner_backup_last_success_timestamp_seconds \([0-9]*\).*/\1/p' "${metrics}" 2>/dev/null || true)"
  [[ -n "${last}" ]] || last="$(cat "${started}" 2>/dev/null || echo 0)"
  age=$(($(date +%s) - last))
  if ((age < max_age_hours * 3600)); then
    exit 0
  fi
  echo "no successful backup for ${age} s (more than ${max_age_hours} h)"
  exit 1
fi

[[ "${at}" =~ ^([01][0-9]|2[0-3]):[0-5][0-9]$ ]] || { say "ALMONER_BACKUP_AT must be HH:MM, not ${at}"; exit 2; }
base="${ALMONER_BACKUP_BASE:-0}"
[[ "${base}" =~ ^[01]$ ]] || { say "ALMONER_BACKUP_BASE must be 0 or 1, not ${base}"; exit 2; }
[[ -x "${script}" ]] || { say "${script} is not there"; exit 2; }
mkdir -p "${ALMONER_BACKUP_METRICS_DIR}"
date +%s >"${started}"
say "backups at ${at} ($(date +%Z)) into ${ALMONER_BACKUP_DIR:-the default directory}${ALMONER_BACKUP_S3_BUCKET:+ and the bucket ${ALMONER_BACKUP_S3_BUCKET}}, kept ${ALMONER_BACKUP_KEEP_DAYS:-14} days$([[ "${base}" == 1 ]] && echo ', with a base backup each time')"
while :; do
  now="$(date +%s)"
  next="$(date -d "today ${at}" +%s)"
  ((next > now)) || next="$(date -d "tomorrow ${at}" +%s)"
  say "next backup at $(date -d "@${next}" '+%F %T %Z')"
  sleep $((next - now))
  if "${script}"; then
    say "backup done"
  else
    say "backup FAILED (exit $?): retried at the next scheduled time; see the lines above"
  fi
  if [[ "${base}" == 1 ]]; then
    if "${script}" --base; then
      say "base backup done"
    else
      say "base backup FAILED (exit $?): retried at the next scheduled time; see the lines above"
    fi
  fi
done
