//! The queue on PostgreSQL, shared by every node pointing at it: one row per
//! job; a claim updates the oldest due row picked `FOR UPDATE SKIP LOCKED`, so
//! concurrent claimers never take the same job and never wait on each other.

use std::time::Duration;

use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use crate::{Finish, Job, JobKind, JobState};

const TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS gojinn_jobs (
  id text PRIMARY KEY, kind text NOT NULL, target text NOT NULL, payload bytea NOT NULL,
  state text NOT NULL, attempts int NOT NULL, max_attempts int NOT NULL, backoff_ms bigint NOT NULL,
  due_ms bigint NOT NULL, created_ms bigint NOT NULL, finished_ms bigint, last_error text,
  result bytea, traceparent text, token text NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS gojinn_jobs_due ON gojinn_jobs (due_ms) WHERE state IN ('queued', 'running');
CREATE INDEX IF NOT EXISTS gojinn_jobs_state ON gojinn_jobs (state, created_ms);
CREATE INDEX IF NOT EXISTS gojinn_jobs_waiting ON gojinn_jobs (target) WHERE state IN ('queued', 'running');
CREATE TABLE IF NOT EXISTS gojinn_cron_ticks (key text PRIMARY KEY, tick_ms bigint NOT NULL);
";

const COLUMNS: &str = "id, kind, target, payload, state, attempts, max_attempts, backoff_ms, \
     due_ms, created_ms, finished_ms, last_error, result, traceparent, token";

pub struct PgQueue {
    config: tokio_postgres::Config,
    client: tokio::sync::Mutex<Option<tokio_postgres::Client>>,
}

fn err(e: impl std::fmt::Display) -> String {
    format!("postgres queue: {e}")
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn u64_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn job_from_row(r: &Row) -> Result<Job, String> {
    let state: String = r.get("state");
    Ok(Job {
        id: r.get("id"),
        kind: JobKind::parse(r.get("kind")),
        target: r.get("target"),
        payload: r.get("payload"),
        state: JobState::parse(&state).ok_or_else(|| err(format!("unknown state `{state}`")))?,
        attempts: u32::try_from(r.get::<_, i32>("attempts")).unwrap_or(0),
        max_attempts: u32::try_from(r.get::<_, i32>("max_attempts")).unwrap_or(1),
        backoff_ms: u64_of(r.get("backoff_ms")),
        due_ms: u64_of(r.get("due_ms")),
        created_ms: u64_of(r.get("created_ms")),
        finished_ms: r.get::<_, Option<i64>>("finished_ms").map(u64_of),
        last_error: r.get("last_error"),
        result: r.get("result"),
        traceparent: r.get("traceparent"),
        token: r.get("token"),
    })
}

impl PgQueue {
    pub(crate) fn new(url: &str) -> Result<PgQueue, String> {
        let config = url.parse().map_err(|e| format!("invalid queue URL: {e}"))?;
        Ok(PgQueue {
            config,
            client: tokio::sync::Mutex::new(None),
        })
    }

    /// Runs `f` on the connection, made (with the schema) on first use and
    /// again after it failed.
    async fn with<T>(
        &self,
        f: impl AsyncFnOnce(&mut tokio_postgres::Client) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, String> {
        let mut slot = self.client.lock().await;
        if slot.as_ref().is_none_or(tokio_postgres::Client::is_closed) {
            let (client, conn) = tokio::time::timeout(TIMEOUT, self.config.connect(NoTls))
                .await
                .map_err(|_| err("connecting timed out"))?
                .map_err(err)?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            client.batch_execute(SCHEMA).await.map_err(err)?;
            *slot = Some(client);
        }
        let client = slot.as_mut().ok_or_else(|| err("no connection"))?;
        tokio::time::timeout(TIMEOUT, f(client))
            .await
            .map_err(|_| err(format!("no answer within {TIMEOUT:?}")))?
            .map_err(err)
    }

    async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, String> {
        self.with(async |c| c.execute(sql, params).await).await
    }

    pub(crate) async fn enqueue(&self, job: Job, cap: u64) -> Result<bool, String> {
        // The cap is checked and the row inserted in one transaction that
        // holds a lock on the target's name, so two nodes cannot both pass it.
        let inserted: bool = self
            .with(async |c| {
                let tx = c.transaction().await?;
                tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&job.target])
                    .await?;
                let waiting: i64 = tx
                    .query_one(
                        "SELECT count(*) FROM gojinn_jobs WHERE target = $1 AND state IN ('queued', 'running')",
                        &[&job.target],
                    )
                    .await?
                    .get(0);
                if u64_of(waiting) >= cap {
                    return Ok(false);
                }
                tx.execute(
                    &format!(
                        "INSERT INTO gojinn_jobs ({COLUMNS}) VALUES ($1, $2, $3, $4, 'queued', 0, $5, $6, $7, $8, NULL, NULL, NULL, $9, '')"
                    ),
                    &[
                        &job.id,
                        &job.kind.as_str(),
                        &job.target,
                        &job.payload,
                        &i32::try_from(job.max_attempts).unwrap_or(i32::MAX),
                        &i64_of(job.backoff_ms),
                        &i64_of(job.due_ms),
                        &i64_of(job.created_ms),
                        &job.traceparent,
                    ],
                )
                .await?;
                tx.commit().await?;
                Ok(true)
            })
            .await?;
        Ok(inserted)
    }

    pub(crate) async fn claim(
        &self,
        now: u64,
        lease_ms: u64,
        token: String,
    ) -> Result<Option<Job>, String> {
        let sql = format!(
            "UPDATE gojinn_jobs SET state = 'running', attempts = attempts + 1, due_ms = $2, token = $3 \
             WHERE id = (SELECT id FROM gojinn_jobs WHERE state IN ('queued', 'running') AND due_ms <= $1 \
                         ORDER BY due_ms LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING {COLUMNS}"
        );
        let (now, due) = (i64_of(now), i64_of(now.saturating_add(lease_ms)));
        let rows = self
            .with(async |c| c.query(&sql, &[&now, &due, &token]).await)
            .await?;
        rows.first().map(job_from_row).transpose()
    }

    pub(crate) async fn finish(
        &self,
        job: &Job,
        finish: &Finish,
        next: Option<u64>,
        now: u64,
    ) -> Result<bool, String> {
        let now = i64_of(now);
        let n = match (finish, next) {
            (Finish::Done(result), _) => {
                self.execute(
                    "UPDATE gojinn_jobs SET state = 'done', result = $3, finished_ms = $4, token = '' \
                     WHERE id = $1 AND token = $2 AND state = 'running'",
                    &[&job.id, &job.token, result, &now],
                )
                .await?
            }
            (Finish::Failed(e), Some(due)) => {
                self.execute(
                    "UPDATE gojinn_jobs SET state = 'queued', last_error = $3, due_ms = $4, token = '' \
                     WHERE id = $1 AND token = $2 AND state = 'running'",
                    &[&job.id, &job.token, e, &i64_of(due)],
                )
                .await?
            }
            (Finish::Failed(e), None) => {
                self.execute(
                    "UPDATE gojinn_jobs SET state = 'dead', last_error = $3, finished_ms = $4, token = '' \
                     WHERE id = $1 AND token = $2 AND state = 'running'",
                    &[&job.id, &job.token, e, &now],
                )
                .await?
            }
        };
        Ok(n == 1)
    }

    pub(crate) async fn get(&self, id: &str) -> Result<Option<Job>, String> {
        let sql = format!("SELECT {COLUMNS} FROM gojinn_jobs WHERE id = $1");
        let rows = self.with(async |c| c.query(&sql, &[&id]).await).await?;
        rows.first().map(job_from_row).transpose()
    }

    pub(crate) async fn list(&self, state: JobState, limit: usize) -> Result<Vec<Job>, String> {
        let sql = format!(
            "SELECT {COLUMNS} FROM gojinn_jobs WHERE state = $1 ORDER BY created_ms LIMIT $2"
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .with(async |c| c.query(&sql, &[&state.as_str(), &limit]).await)
            .await?;
        rows.iter().map(job_from_row).collect()
    }

    pub(crate) async fn retry(&self, id: &str, now: u64) -> Result<bool, String> {
        let n = self
            .execute(
                "UPDATE gojinn_jobs SET state = 'queued', attempts = 0, due_ms = $2, finished_ms = NULL \
                 WHERE id = $1 AND state = 'dead'",
                &[&id, &i64_of(now)],
            )
            .await?;
        Ok(n == 1)
    }

    pub(crate) async fn delete(&self, id: &str) -> Result<bool, String> {
        let n = self
            .execute(
                "DELETE FROM gojinn_jobs WHERE id = $1 AND state <> 'running'",
                &[&id],
            )
            .await?;
        Ok(n == 1)
    }

    pub(crate) async fn prune_done(&self, before: u64) -> Result<usize, String> {
        let n = self
            .execute(
                "DELETE FROM gojinn_jobs WHERE id IN (SELECT id FROM gojinn_jobs \
                 WHERE state = 'done' AND finished_ms < $1 LIMIT 1000)",
                &[&i64_of(before)],
            )
            .await?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    pub(crate) async fn depths(&self) -> Result<Vec<(String, u64)>, String> {
        let rows = self
            .with(async |c| {
                c.query(
                    "SELECT target, count(*) FROM gojinn_jobs WHERE state IN ('queued', 'running') GROUP BY target",
                    &[],
                )
                .await
            })
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<_, String>(0), u64_of(r.get::<_, i64>(1))))
            .collect())
    }

    pub(crate) async fn claim_tick(&self, key: &str, tick_ms: u64) -> Result<bool, String> {
        let n = self
            .execute(
                "INSERT INTO gojinn_cron_ticks (key, tick_ms) VALUES ($1, $2) \
                 ON CONFLICT (key) DO UPDATE SET tick_ms = EXCLUDED.tick_ms \
                 WHERE gojinn_cron_ticks.tick_ms < EXCLUDED.tick_ms",
                &[&key, &i64_of(tick_ms)],
            )
            .await?;
        Ok(n == 1)
    }

    pub(crate) async fn last_tick(&self, key: &str) -> Result<Option<u64>, String> {
        let rows = self
            .with(async |c| {
                c.query(
                    "SELECT tick_ms FROM gojinn_cron_ticks WHERE key = $1",
                    &[&key],
                )
                .await
            })
            .await?;
        Ok(rows.first().map(|r| u64_of(r.get(0))))
    }
}
