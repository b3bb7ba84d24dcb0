//! The shared limit store on Redis: several gateway instances count the same requests, tokens
//! and spend. Each reserve and each settle is one Lua script over every scope of the request
//! (its key and its feature), so a reservation is all-or-nothing and concurrent instances
//! cannot interleave between the check and the count.
//!
//! Layout (prefix `switchyard:lim:` then the scope id):
//! - `…:req` and `…:tok`: hashes of second -> count, the one-minute sliding windows;
//! - `…:spend:<period id>`: a hash with `spent` (settled nano-dollars) and one `r:<bucket>`
//!   field per 10 s of reservation expiry (nano-dollars reserved by requests in flight).
//!   Reservations expire after `reservation_ttl`, so an instance that dies mid-request does
//!   not hold budget forever.
//!
//! Money is in whole nano-dollars and goes into `HINCRBY` as the decimal string the gateway
//! wrote, never through a Lua number, so counts stay exact; Lua compares them as doubles,
//! which is exact below 2^53 (budgets are capped at $9,000,000).
//!
//! Redis calls run on a small runtime of their own (one thread), each bounded by
//! `store_timeout`; a failed settle is kept and retried with the next call.

use super::{Ask, Denial, DenialKind, Settlement, StoreDown, Ticket, Verdict};
use redis::aio::ConnectionManager;
use redis::Script;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PREFIX: &str = "switchyard:lim:";
/// Reservation expiry buckets, in ms.
const RESV_BUCKET_MS: i64 = 10_000;
/// Settlements kept for a retry while Redis is away; older ones are dropped (and logged).
const MAX_PENDING: usize = 10_000;

const RESERVE: &str = r#"
local now = tonumber(ARGV[1])
local tokens = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local n = tonumber(ARGV[4])
local resv_field = ARGV[5]
local now_s = math.floor(now / 1000)

local function window(key)
  local all = redis.call('HGETALL', key)
  local total, buckets = 0, {}
  for i = 1, #all, 2 do
    local s, c = tonumber(all[i]), tonumber(all[i + 1])
    if s <= now_s - 60 then
      redis.call('HDEL', key, all[i])
    else
      total = total + c
      buckets[#buckets + 1] = {s, c}
    end
  end
  table.sort(buckets, function(a, b) return a[1] < b[1] end)
  return total, buckets
end

local function wait_ms(total, buckets, need, limit)
  if total + need <= limit then return 0 end
  local left = total
  for _, b in ipairs(buckets) do
    left = left - b[2]
    if left + need <= limit then return math.max((b[1] + 60) * 1000 - now, 1) end
  end
  return 60000
end

local function spend(key)
  local all = redis.call('HGETALL', key)
  local spent, reserved = 0, 0
  for i = 1, #all, 2 do
    local f, v = all[i], tonumber(all[i + 1])
    if f == 'spent' then
      spent = v
    elseif string.sub(f, 1, 2) == 'r:' then
      if tonumber(string.sub(f, 3)) * 10000 <= now then
        redis.call('HDEL', key, f)
      else
        reserved = reserved + v
      end
    end
  end
  return spent, reserved
end

for i = 0, n - 1 do
  local rpm, tpm, budget = tonumber(ARGV[6 + i * 4]), tonumber(ARGV[7 + i * 4]), tonumber(ARGV[8 + i * 4])
  if rpm >= 0 then
    local t, b = window(KEYS[1 + i * 3])
    local w = wait_ms(t, b, 1, rpm)
    if w > 0 then return {'rpm', i, w} end
  end
  if tpm >= 0 then
    if tokens > tpm then return {'too_large', i, 0} end
    local t, b = window(KEYS[2 + i * 3])
    local w = wait_ms(t, b, tokens, tpm)
    if w > 0 then return {'tpm', i, w} end
  end
  if budget >= 0 then
    local spent, reserved = spend(KEYS[3 + i * 3])
    if spent + reserved + cost > budget then return {'budget', i, 0, spent, reserved} end
  end
end
for i = 0, n - 1 do
  if tonumber(ARGV[6 + i * 4]) >= 0 then
    redis.call('HINCRBY', KEYS[1 + i * 3], now_s, 1)
    redis.call('PEXPIRE', KEYS[1 + i * 3], 61000)
  end
  if tonumber(ARGV[7 + i * 4]) >= 0 then
    redis.call('HINCRBY', KEYS[2 + i * 3], now_s, ARGV[2])
    redis.call('PEXPIRE', KEYS[2 + i * 3], 61000)
  end
  if tonumber(ARGV[8 + i * 4]) >= 0 then
    redis.call('HINCRBY', KEYS[3 + i * 3], resv_field, ARGV[3])
    redis.call('PEXPIRE', KEYS[3 + i * 3], ARGV[9 + i * 4])
  end
end
return {'ok'}
"#;

const SETTLE: &str = r#"
local now_s = math.floor(tonumber(ARGV[1]) / 1000)
local at_s = ARGV[2]
local delta = tonumber(ARGV[3])
local resv_field = ARGV[4]
local n = tonumber(ARGV[7])
for i = 0, n - 1 do
  local tok, sp = KEYS[1 + i * 2], KEYS[2 + i * 2]
  if ARGV[8 + i * 3] == '1' and delta ~= 0 then
    local cur = tonumber(redis.call('HGET', tok, at_s) or '-1')
    if cur >= 0 and tonumber(at_s) > now_s - 60 then
      if delta < 0 and -delta > cur then
        redis.call('HSET', tok, at_s, 0)
      else
        redis.call('HINCRBY', tok, at_s, ARGV[3])
      end
    elseif delta > 0 then
      redis.call('HINCRBY', tok, now_s, ARGV[3])
      redis.call('PEXPIRE', tok, 61000)
    end
  end
  if ARGV[9 + i * 3] == '1' then
    if redis.call('HEXISTS', sp, resv_field) == 1 then
      local left = redis.call('HINCRBY', sp, resv_field, ARGV[5])
      if left <= 0 then redis.call('HDEL', sp, resv_field) end
    end
    redis.call('HINCRBY', sp, 'spent', ARGV[6])
    redis.call('PEXPIRE', sp, ARGV[10 + i * 3])
  end
end
return 1
"#;

/// Redis-backed limits; see the module docs.
pub struct RedisStore {
    conn: ConnectionManager,
    io: tokio::runtime::Handle,
    /// Ends the runtime's thread when the store is dropped.
    _stop: std::sync::mpsc::SyncSender<()>,
    reserve: Arc<Script>,
    settle: Arc<Script>,
    timeout: Duration,
    reservation_ttl: Duration,
    pending: Mutex<Vec<(Ticket, Settlement)>>,
}

fn scope_key(id: &str, part: &str) -> String {
    format!("{PREFIX}{id}:{part}")
}

/// How long a spend hash is kept: until a day after its period ends (a total: a year, renewed
/// with every write).
fn spend_ttl_ms(b: &super::BudgetAsk, now_ms: i64) -> i64 {
    match b.period.bounds(now_ms).1 {
        Some(end) => (end - now_ms).max(0) + 86_400_000,
        None => 366 * 86_400_000,
    }
}

impl RedisStore {
    /// A store on `url` (`redis://host:port/db`). Connects lazily: a Redis that is down at
    /// start is reported by the first request, as the policy says.
    pub fn new(
        url: &str,
        timeout: Duration,
        reservation_ttl: Duration,
    ) -> Result<RedisStore, String> {
        let client = redis::Client::open(url).map_err(|e| format!("redis url: {e}"))?;
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::sync_channel::<()>(1);
        std::thread::Builder::new()
            .name("limits-redis".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = handle_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = handle_tx.send(Ok(rt.handle().clone()));
                // Until the store is dropped (the sender with it).
                let _ = stop_rx.recv();
            })
            .map_err(|e| format!("cannot start the redis thread: {e}"))?;
        let io = handle_rx
            .recv()
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("redis runtime: {e}"))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = {
            let _in_runtime = io.enter();
            ConnectionManager::new_lazy_with_config(client, config)
                .map_err(|e| format!("redis: {e}"))?
        };
        Ok(RedisStore {
            conn,
            io,
            _stop: stop_tx,
            reserve: Arc::new(Script::new(RESERVE)),
            settle: Arc::new(Script::new(SETTLE)),
            timeout,
            reservation_ttl,
            pending: Mutex::new(Vec::new()),
        })
    }

    fn resv_field(&self, at_ms: i64) -> String {
        let ttl = i64::try_from(self.reservation_ttl.as_millis()).unwrap_or(i64::MAX / 2);
        format!("r:{}", (at_ms + ttl).div_euclid(RESV_BUCKET_MS) + 1)
    }

    /// Runs one script call on the store's runtime, bounded by the timeout.
    async fn run<T: redis::FromRedisValue + Send + 'static>(
        &self,
        script: &Arc<Script>,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<T, StoreDown> {
        let mut conn = self.conn.clone();
        let script = script.clone();
        let call = self.io.spawn(async move {
            let mut inv = script.prepare_invoke();
            for k in &keys {
                inv.key(k);
            }
            for a in &args {
                inv.arg(a);
            }
            inv.invoke_async::<T>(&mut conn).await
        });
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err(e))) => Err(StoreDown(format!("redis: {e}"))),
            Ok(Err(e)) => Err(StoreDown(format!("redis task: {e}"))),
            Err(_) => Err(StoreDown(format!(
                "redis did not answer within {} ms",
                self.timeout.as_millis()
            ))),
        }
    }

    pub async fn reserve(&self, ask: &Ask) -> Result<Verdict, StoreDown> {
        let mut keys = Vec::with_capacity(ask.scopes.len() * 3);
        let mut args = vec![
            ask.now_ms.to_string(),
            ask.tokens.to_string(),
            ask.cost_nanos.to_string(),
            ask.scopes.len().to_string(),
            self.resv_field(ask.now_ms),
        ];
        let opt = |v: Option<u64>| v.map_or("-1".to_owned(), |n| n.to_string());
        for s in &ask.scopes {
            let period = s.budget.as_ref().map_or("none", |b| b.period_id.as_str());
            keys.push(scope_key(&s.id, "req"));
            keys.push(scope_key(&s.id, "tok"));
            keys.push(scope_key(&s.id, &format!("spend:{period}")));
            args.push(opt(s.rpm));
            args.push(opt(s.tpm));
            args.push(
                s.budget
                    .as_ref()
                    .map_or("-1".to_owned(), |b| b.nanos.to_string()),
            );
            args.push(
                s.budget
                    .as_ref()
                    .map_or(0, |b| spend_ttl_ms(b, ask.now_ms))
                    .to_string(),
            );
        }
        let reply: Vec<redis::Value> = self.run(&self.reserve, keys, args).await?;
        self.retry_pending().await;
        parse_verdict(&reply, ask)
    }

    pub async fn settle(&self, t: &Ticket, used: &Settlement) {
        if let Err(e) = self.settle_once(t, used).await {
            log::warn!("limits: settle deferred until redis answers: {}", e.0);
            self.defer(t.clone(), *used);
        }
    }

    /// Spend made on the local lease while Redis was away, recorded in Redis when it is back
    /// (so the shared budget counts it).
    pub fn defer_local(&self, t: &Ticket, used: &Settlement) {
        let mut t = t.clone();
        t.tokens = 0;
        t.cost_nanos = 0;
        t.local = false;
        self.defer(t, *used);
    }

    fn defer(&self, t: Ticket, used: Settlement) {
        let mut p = match self.pending.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if p.len() >= MAX_PENDING {
            log::error!("limits: {MAX_PENDING} settlements waiting for redis; dropping the oldest");
            p.remove(0);
        }
        p.push((t, used));
    }

    async fn retry_pending(&self) {
        let waiting = {
            let mut p = match self.pending.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            std::mem::take(&mut *p)
        };
        for (t, used) in waiting {
            if self.settle_once(&t, &used).await.is_err() {
                self.defer(t, used);
            }
        }
    }

    async fn settle_once(&self, t: &Ticket, used: &Settlement) -> Result<(), StoreDown> {
        let delta = i128::from(used.tokens) - i128::from(t.tokens);
        let mut keys = Vec::with_capacity(t.scopes.len() * 2);
        let mut args = vec![
            used.now_ms.to_string(),
            t.at_ms.div_euclid(1000).to_string(),
            delta.to_string(),
            self.resv_field(t.at_ms),
            (-t.cost_nanos).to_string(),
            used.cost_nanos.to_string(),
            t.scopes.len().to_string(),
        ];
        for s in &t.scopes {
            let period = s.budget.as_ref().map_or("none", |b| b.period_id.as_str());
            keys.push(scope_key(&s.id, "tok"));
            keys.push(scope_key(&s.id, &format!("spend:{period}")));
            args.push(if s.tpm.is_some() { "1" } else { "0" }.to_owned());
            args.push(if s.budget.is_some() { "1" } else { "0" }.to_owned());
            args.push(
                s.budget
                    .as_ref()
                    .map_or(0, |b| spend_ttl_ms(b, t.at_ms))
                    .to_string(),
            );
        }
        let _: i64 = self.run(&self.settle, keys, args).await?;
        Ok(())
    }

    /// (spent, reserved) nano-dollars of a scope's period, for reports.
    pub async fn spend(&self, scope: &str, period_id: &str) -> Result<(i64, i64), StoreDown> {
        let mut conn = self.conn.clone();
        let key = scope_key(scope, &format!("spend:{period_id}"));
        let call = self.io.spawn(async move {
            redis::cmd("HGETALL")
                .arg(&key)
                .query_async::<Vec<(String, i64)>>(&mut conn)
                .await
        });
        let fields = match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(Ok(v))) => v,
            _ => return Err(StoreDown("redis did not answer".into())),
        };
        let spent = fields
            .iter()
            .find(|(f, _)| f == "spent")
            .map_or(0, |(_, v)| *v);
        let reserved = fields
            .iter()
            .filter(|(f, _)| f.starts_with("r:"))
            .map(|(_, v)| *v)
            .sum();
        Ok((spent, reserved))
    }
}

fn int(v: Option<&redis::Value>) -> i64 {
    match v {
        Some(redis::Value::Int(n)) => *n,
        Some(redis::Value::BulkString(b)) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        _ => 0,
    }
}

fn parse_verdict(reply: &[redis::Value], ask: &Ask) -> Result<Verdict, StoreDown> {
    let tag = match reply.first() {
        Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(redis::Value::SimpleString(s)) => s.clone(),
        other => return Err(StoreDown(format!("unexpected reply from redis: {other:?}"))),
    };
    let scope = usize::try_from(int(reply.get(1))).unwrap_or(0);
    let retry_after_ms = int(reply.get(2));
    let kind = match tag.as_str() {
        "ok" => return Ok(Verdict::Granted(Ticket::new(ask, false))),
        "rpm" => DenialKind::Rpm,
        "tpm" => DenialKind::Tpm,
        "too_large" => DenialKind::TooLarge,
        "budget" => DenialKind::Budget {
            spent_nanos: int(reply.get(3)),
            reserved_nanos: int(reply.get(4)),
        },
        other => return Err(StoreDown(format!("unexpected verdict from redis: {other}"))),
    };
    Ok(Verdict::Denied(Denial {
        scope,
        kind,
        retry_after_ms,
    }))
}
