//! The queue on Redis, shared by every node pointing at it. A job is a hash
//! (`gojinn:jobs:job:<id>`); queued and running jobs sit in one sorted set by
//! due time (claim takes the first due member), every job in a sorted set per
//! state (listing), waiting counts per target in counters. Each change of a
//! job is one Lua script, so it is atomic across nodes.
//!
//! Not Redis Streams: a stream's pending list gives redelivery after a
//! consumer dies, but not a delayed retry with back-off nor a dead-letter
//! state; a sorted set by due time gives all three with one rule.

use std::collections::HashMap;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};
use tokio::sync::OnceCell;

use crate::{Finish, Job, JobKind, JobState};

const P: &str = "gojinn:jobs:";
const TIMEOUT: Duration = Duration::from_secs(5);

/// KEYS: count, due, state:queued, job, targets. ARGV: cap, due, created, id,
/// target, then field/value pairs.
const ENQUEUE: &str = r"
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then return 0 end
redis.call('INCR', KEYS[1])
redis.call('SADD', KEYS[5], ARGV[5])
redis.call('HSET', KEYS[4], unpack(ARGV, 6))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
return 1
";

/// KEYS: due. ARGV: now, lease_ms, token, prefix.
const CLAIM: &str = r"
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1)
if #ids == 0 then return false end
local id = ids[1]
local key = ARGV[4] .. 'job:' .. id
local due = tonumber(ARGV[1]) + tonumber(ARGV[2])
local state = redis.call('HGET', key, 'state')
local created = redis.call('HGET', key, 'created_ms')
redis.call('ZADD', KEYS[1], due, id)
redis.call('HSET', key, 'state', 'running', 'token', ARGV[3], 'due_ms', due)
redis.call('HINCRBY', key, 'attempts', 1)
if state ~= 'running' then
  redis.call('ZREM', ARGV[4] .. 'state:' .. state, id)
  redis.call('ZADD', ARGV[4] .. 'state:running', created, id)
end
return id
";

/// ARGV: prefix, id, token, outcome (done|queued|dead), due, now, field, value.
const FINISH: &str = r"
local p = ARGV[1]
local id = ARGV[2]
local key = p .. 'job:' .. id
if redis.call('HGET', key, 'state') ~= 'running' or redis.call('HGET', key, 'token') ~= ARGV[3] then
  return 0
end
local created = redis.call('HGET', key, 'created_ms')
local target = redis.call('HGET', key, 'target')
redis.call('ZREM', p .. 'state:running', id)
redis.call('ZADD', p .. 'state:' .. ARGV[4], created, id)
redis.call('HSET', key, 'state', ARGV[4], 'token', '', ARGV[7], ARGV[8])
if ARGV[4] == 'queued' then
  redis.call('HSET', key, 'due_ms', ARGV[5])
  redis.call('ZADD', p .. 'due', ARGV[5], id)
else
  redis.call('HSET', key, 'finished_ms', ARGV[6])
  redis.call('ZREM', p .. 'due', id)
  redis.call('DECR', p .. 'count:' .. target)
end
return 1
";

/// ARGV: prefix, id, now.
const RETRY: &str = r"
local p = ARGV[1]
local id = ARGV[2]
local key = p .. 'job:' .. id
if redis.call('HGET', key, 'state') ~= 'dead' then return 0 end
local created = redis.call('HGET', key, 'created_ms')
redis.call('ZREM', p .. 'state:dead', id)
redis.call('ZADD', p .. 'state:queued', created, id)
redis.call('ZADD', p .. 'due', ARGV[3], id)
redis.call('HSET', key, 'state', 'queued', 'attempts', 0, 'due_ms', ARGV[3])
redis.call('HDEL', key, 'finished_ms')
redis.call('INCR', p .. 'count:' .. redis.call('HGET', key, 'target'))
return 1
";

/// ARGV: prefix, id.
const DELETE: &str = r"
local p = ARGV[1]
local id = ARGV[2]
local key = p .. 'job:' .. id
local state = redis.call('HGET', key, 'state')
if not state or state == 'running' then return 0 end
if state == 'queued' then
  redis.call('DECR', p .. 'count:' .. redis.call('HGET', key, 'target'))
end
redis.call('ZREM', p .. 'due', id)
redis.call('ZREM', p .. 'state:' .. state, id)
redis.call('DEL', key)
return 1
";

/// KEYS: tick. ARGV: tick_ms.
const TICK: &str = r"
local last = tonumber(redis.call('GET', KEYS[1]) or '-1')
if last >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
";

pub struct RedisQueue {
    client: redis::Client,
    conn: OnceCell<ConnectionManager>,
}

fn err(e: impl std::fmt::Display) -> String {
    format!("redis queue: {e}")
}

async fn timed<T>(
    f: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, String> {
    tokio::time::timeout(TIMEOUT, f)
        .await
        .map_err(|_| err(format!("no answer within {TIMEOUT:?}")))?
        .map_err(err)
}

fn job_from_hash(h: &HashMap<String, Vec<u8>>) -> Option<Job> {
    let s = |k: &str| h.get(k).map(|v| String::from_utf8_lossy(v).into_owned());
    let n = |k: &str| s(k).and_then(|v| v.parse::<u64>().ok());
    let opt = |k: &str| s(k).filter(|v| !v.is_empty());
    Some(Job {
        id: s("id")?,
        kind: JobKind::parse(&s("kind")?),
        target: s("target")?,
        payload: h.get("payload").cloned().unwrap_or_default(),
        state: JobState::parse(&s("state")?)?,
        attempts: u32::try_from(n("attempts")?).ok()?,
        max_attempts: u32::try_from(n("max_attempts")?).ok()?,
        backoff_ms: n("backoff_ms")?,
        due_ms: n("due_ms")?,
        created_ms: n("created_ms")?,
        finished_ms: n("finished_ms"),
        last_error: opt("last_error"),
        result: h.get("result").filter(|r| !r.is_empty()).cloned(),
        traceparent: opt("traceparent"),
        token: s("token").unwrap_or_default(),
    })
}

impl RedisQueue {
    pub(crate) fn new(url: &str) -> Result<RedisQueue, String> {
        let client =
            redis::Client::open(url).map_err(|e| format!("invalid queue URL `{url}`: {e}"))?;
        Ok(RedisQueue {
            client,
            conn: OnceCell::new(),
        })
    }

    async fn conn(&self) -> Result<ConnectionManager, String> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(TIMEOUT)
            .set_response_timeout(TIMEOUT)
            .set_number_of_retries(1);
        self.conn
            .get_or_try_init(|| ConnectionManager::new_with_config(self.client.clone(), config))
            .await
            .cloned()
            .map_err(err)
    }

    pub(crate) async fn enqueue(&self, job: Job, cap: u64) -> Result<bool, String> {
        let mut c = self.conn().await?;
        let script = Script::new(ENQUEUE);
        let mut inv = script.prepare_invoke();
        inv.key(format!("{P}count:{}", job.target))
            .key(format!("{P}due"))
            .key(format!("{P}state:queued"))
            .key(format!("{P}job:{}", job.id))
            .key(format!("{P}targets"))
            .arg(cap)
            .arg(job.due_ms)
            .arg(job.created_ms)
            .arg(&job.id)
            .arg(&job.target);
        let fields: [(&str, Vec<u8>); 11] = [
            ("id", job.id.clone().into_bytes()),
            ("kind", job.kind.as_str().into()),
            ("target", job.target.clone().into_bytes()),
            ("payload", job.payload.clone()),
            ("state", "queued".into()),
            ("attempts", b"0".to_vec()),
            ("max_attempts", job.max_attempts.to_string().into_bytes()),
            ("backoff_ms", job.backoff_ms.to_string().into_bytes()),
            ("due_ms", job.due_ms.to_string().into_bytes()),
            ("created_ms", job.created_ms.to_string().into_bytes()),
            (
                "traceparent",
                job.traceparent.clone().unwrap_or_default().into_bytes(),
            ),
        ];
        for (k, v) in fields {
            inv.arg(k).arg(v);
        }
        let queued: i64 = timed(inv.invoke_async(&mut c)).await?;
        Ok(queued == 1)
    }

    pub(crate) async fn claim(
        &self,
        now: u64,
        lease_ms: u64,
        token: String,
    ) -> Result<Option<Job>, String> {
        let mut c = self.conn().await?;
        let id: Option<String> = timed(
            Script::new(CLAIM)
                .key(format!("{P}due"))
                .arg(now)
                .arg(lease_ms)
                .arg(&token)
                .arg(P)
                .invoke_async(&mut c),
        )
        .await?;
        match id {
            Some(id) => self.get(&id).await,
            None => Ok(None),
        }
    }

    pub(crate) async fn finish(
        &self,
        job: &Job,
        finish: &Finish,
        next: Option<u64>,
        now: u64,
    ) -> Result<bool, String> {
        let (outcome, field, value): (&str, &str, &[u8]) = match (finish, next) {
            (Finish::Done(r), _) => ("done", "result", r),
            (Finish::Failed(e), Some(_)) => ("queued", "last_error", e.as_bytes()),
            (Finish::Failed(e), None) => ("dead", "last_error", e.as_bytes()),
        };
        let mut c = self.conn().await?;
        let done: i64 = timed(
            Script::new(FINISH)
                .arg(P)
                .arg(&job.id)
                .arg(&job.token)
                .arg(outcome)
                .arg(next.unwrap_or(0))
                .arg(now)
                .arg(field)
                .arg(value)
                .invoke_async(&mut c),
        )
        .await?;
        Ok(done == 1)
    }

    pub(crate) async fn get(&self, id: &str) -> Result<Option<Job>, String> {
        let mut c = self.conn().await?;
        let h: HashMap<String, Vec<u8>> = timed(c.hgetall(format!("{P}job:{id}"))).await?;
        Ok(job_from_hash(&h))
    }

    pub(crate) async fn list(&self, state: JobState, limit: usize) -> Result<Vec<Job>, String> {
        let mut c = self.conn().await?;
        let stop = isize::try_from(limit)
            .unwrap_or(isize::MAX)
            .saturating_sub(1);
        let ids: Vec<String> =
            timed(c.zrange(format!("{P}state:{}", state.as_str()), 0, stop)).await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(job) = self.get(&id).await? {
                out.push(job);
            }
        }
        Ok(out)
    }

    async fn by_id(&self, script: &str, id: &str, extra: Option<u64>) -> Result<bool, String> {
        let mut c = self.conn().await?;
        let script = Script::new(script);
        let mut inv = script.prepare_invoke();
        inv.arg(P).arg(id);
        if let Some(x) = extra {
            inv.arg(x);
        }
        let n: i64 = timed(inv.invoke_async(&mut c)).await?;
        Ok(n == 1)
    }

    pub(crate) async fn retry(&self, id: &str, now: u64) -> Result<bool, String> {
        self.by_id(RETRY, id, Some(now)).await
    }

    pub(crate) async fn delete(&self, id: &str) -> Result<bool, String> {
        self.by_id(DELETE, id, None).await
    }

    pub(crate) async fn prune_done(&self, before: u64) -> Result<usize, String> {
        let mut c = self.conn().await?;
        // Done jobs are listed by creation; their finish is read per job.
        let ids: Vec<String> = timed(c.zrange(format!("{P}state:done"), 0, 999)).await?;
        let mut removed = 0;
        for id in ids {
            let finished: Option<u64> =
                timed(c.hget(format!("{P}job:{id}"), "finished_ms")).await?;
            if finished.is_some_and(|f| f < before) && self.by_id(DELETE, &id, None).await? {
                removed += 1;
            }
        }
        Ok(removed)
    }

    pub(crate) async fn depths(&self) -> Result<Vec<(String, u64)>, String> {
        let mut c = self.conn().await?;
        let targets: Vec<String> = timed(c.smembers(format!("{P}targets"))).await?;
        let mut out = Vec::with_capacity(targets.len());
        for target in targets {
            let n: Option<i64> = timed(c.get(format!("{P}count:{target}"))).await?;
            out.push((target, u64::try_from(n.unwrap_or(0)).unwrap_or(0)));
        }
        Ok(out)
    }

    pub(crate) async fn claim_tick(&self, key: &str, tick_ms: u64) -> Result<bool, String> {
        let mut c = self.conn().await?;
        let n: i64 = timed(
            Script::new(TICK)
                .key(format!("{P}tick:{key}"))
                .arg(tick_ms)
                .invoke_async(&mut c),
        )
        .await?;
        Ok(n == 1)
    }

    pub(crate) async fn last_tick(&self, key: &str) -> Result<Option<u64>, String> {
        let mut c = self.conn().await?;
        timed(c.get(format!("{P}tick:{key}"))).await
    }
}
