/**
 * Lua scripts for what Bull 4.16.5 has no atomic call for. They follow Bull's own storage (read from
 * node_modules/bull/lib/commands/*.lua): a job is the hash `<prefix>:<queue>:<id>` (fields `priority`, `opts` as
 * JSON, …); waiting jobs sit in the list `wait` (or `paused` while the pool is paused), the RIGHT end is taken next
 * (`BRPOPLPUSH`/`RPOPLPUSH wait active`); prioritised jobs are also in the zset `priority` (score = priority,
 * lower runs first), which Bull's `addJobWithPriority` uses to find the list position.
 *
 * Kept as strings (not .lua files) so that bundling the main process needs no asset handling.
 */

/**
 * Re-inserts `jobId` into `list` at the place its priority gives it: after every job that runs before it. With
 * `first` it goes before the jobs of the same priority. Scans the list from the left (the end taken last), so a
 * list that is not sorted (stalled jobs pushed to the front by Bull) is still handled sensibly.
 */
const INSERT_BY_PRIORITY = `
local function priorityOf(prioKey, jobPrefix, id)
  local p = redis.call('ZSCORE', prioKey, id)
  if p then return tonumber(p) end
  return tonumber(redis.call('HGET', jobPrefix .. id, 'priority')) or 0
end

local function insertByPriority(list, prioKey, jobPrefix, jobId, prio, first)
  local ids = redis.call('LRANGE', list, 0, -1)
  for i = 1, #ids do
    local p = priorityOf(prioKey, jobPrefix, ids[i])
    if p < prio or (p == prio and not first) then
      redis.call('LINSERT', list, 'BEFORE', ids[i], jobId)
      return
    end
  end
  redis.call('RPUSH', list, jobId)
end
`

/**
 * A job counts as live (blocks a duplicate) while it exists and is neither completed nor failed, nor waiting to be
 * cancelled: a cancel request on a job whose node is gone waits until the job restarts, and the same file queued
 * meanwhile must make a job of its own, not join one that is to be cancelled.
 */
const IS_LIVE = `
local function isLive(jobPrefix, completedKey, failedKey, dedupeKey, id)
  -- Bull's counter gives every job of ours its id; anything else in the key (the queue's own 'id' or
  -- 'stalled-check' key names a key that exists) is garbage, and must not block the file for good.
  if not string.match(id, '^%d+$') then return false end
  if redis.call('EXISTS', jobPrefix .. id) == 1 then
    if redis.call('EXISTS', jobPrefix .. 'bp:cancel:' .. id) == 1 then return false end
    return not redis.call('ZSCORE', completedKey, id) and not redis.call('ZSCORE', failedKey, id)
  end
  -- No job hash: live only while a reservation with a TTL lasts (an add in flight on a node of an older version).
  return redis.call('PTTL', dedupeKey) > 0
end
`

/**
 * Bull's own `addJob` script (Bull 4, `lib/commands/addJob-6.lua`: the text Bull loaded on its client, passed in at
 * run time so that no copy of Bull's code is kept here), wrapped as a Lua function behind a de-duplication check:
 * one round trip that either returns the live job holding the key or adds the job exactly as `Queue.add` would and
 * makes the key name it. If Bull's part fails, the key is not written.
 * KEYS 1–6 and ARGV 1–14: Bull's `addJob` keys and arguments, as Bull's `Queue.add` builds them (no custom job id:
 * the id comes from Bull's counter). KEYS[7]: dedupe key, KEYS[8]: `completed`, KEYS[9]: `failed`.
 * Returns `{1, newId}` (added) or `{0, ownerId}` (duplicate).
 */
export function addJobWithDedupe(bullAddJob: string): string {
  return `
local function bullAddJob()
${bullAddJob}
end
${IS_LIVE}
local owner = redis.call('GET', KEYS[7])
if owner and isLive(ARGV[1], KEYS[8], KEYS[9], KEYS[7], owner) then
  return {0, owner}
end
if ARGV[2] ~= '' then return redis.error_reply('bpAddJob: a custom job id would bypass the de-duplication') end
local id = bullAddJob()
redis.call('SET', KEYS[7], id)
return {1, id}
`
}

/** Drops the de-duplication key if `jobId` still holds it. KEYS: dedupe key. ARGV: job id. */
export const DEDUPE_RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`

/**
 * Changes the priority of a waiting (or paused) job and moves it to its new place, atomically.
 * KEYS: `wait`, `paused`, `priority`, job key. ARGV: job id, new priority, job key prefix, 'top' | ''
 * ('top': first among the jobs of that priority).
 * Returns 1, -1 (no such job) or -2 (not waiting/paused).
 */
export const SET_PRIORITY = `
${INSERT_BY_PRIORITY}
local jobId = ARGV[1]
if redis.call('EXISTS', KEYS[4]) == 0 then return -1 end
local prio = tonumber(ARGV[2])
if tonumber(redis.call('HGET', KEYS[4], 'priority')) == prio and ARGV[4] ~= 'top' then
  -- Same priority: the job keeps its place (if it is waiting at all).
  for _, list in ipairs({KEYS[1], KEYS[2]}) do
    local ids = redis.call('LRANGE', list, 0, -1)
    for i = 1, #ids do
      if ids[i] == jobId then return 1 end
    end
  end
  return -2
end
local list = KEYS[1]
if redis.call('LREM', list, 0, jobId) == 0 then
  list = KEYS[2]
  if redis.call('LREM', list, 0, jobId) == 0 then return -2 end
end
redis.call('HSET', KEYS[4], 'priority', prio)
local opts = redis.call('HGET', KEYS[4], 'opts')
if opts then
  local n
  opts, n = string.gsub(opts, '"priority":%-?%d+', '"priority":' .. prio, 1)
  if n == 0 then
    if opts == '{}' then opts = '{"priority":' .. prio .. '}'
    else opts = string.gsub(opts, '^{', '{"priority":' .. prio .. ',', 1) end
  end
  redis.call('HSET', KEYS[4], 'opts', opts)
end
redis.call('ZADD', KEYS[3], prio, jobId)
insertByPriority(list, KEYS[3], ARGV[3], jobId, prio, ARGV[4] == 'top')
return 1
`

/**
 * Puts a failed job back to waiting at its priority's place, with its attempts reset. Refuses when a newer copy of
 * the same file is live. KEYS: `failed`, `wait`, `paused`, `meta-paused`, `priority`, job key, dedupe key,
 * `completed`, cancel key. ARGV: job id, job key prefix, timestamp, waiting-event channel.
 * Returns {1}, {-1} (no job), {-2} (not failed), {-3} (locked), {-4, ownerId} (a copy is live).
 */
export const RETRY = `
${INSERT_BY_PRIORITY}
${IS_LIVE}
local jobId = ARGV[1]
if redis.call('EXISTS', KEYS[6]) == 0 then return {-1} end
if redis.call('EXISTS', KEYS[6] .. ':lock') == 1 then return {-3} end
if not redis.call('ZSCORE', KEYS[1], jobId) then return {-2} end
local owner = redis.call('GET', KEYS[7])
if owner and owner ~= jobId and isLive(ARGV[2], KEYS[8], KEYS[1], KEYS[7], owner) then return {-4, owner} end
redis.call('ZREM', KEYS[1], jobId)
redis.call('HDEL', KEYS[6], 'finishedOn', 'processedOn', 'failedReason', 'bpNode')
redis.call('HSET', KEYS[6], 'retriedOn', ARGV[3], 'attemptsMade', 0, 'stalledCounter', 0)
redis.call('SET', KEYS[7], jobId)
redis.call('DEL', KEYS[9])
local target = KEYS[2]
if redis.call('EXISTS', KEYS[4]) == 1 then target = KEYS[3] end
local prio = tonumber(redis.call('HGET', KEYS[6], 'priority')) or 0
redis.call('ZADD', KEYS[5], prio, jobId)
insertByPriority(target, KEYS[5], ARGV[2], jobId, prio, false)
redis.call('PUBLISH', ARGV[4], jobId)
return {1}
`

/**
 * Hands an active job back: it leaves `active`, loses its lock and goes back to waiting first among its
 * priority, without counting an attempt. Only the lock holder can do it.
 * KEYS: `active`, `wait`, `paused`, `meta-paused`, `priority`, job key, `stalled`.
 * ARGV: job id, lock token, job key prefix, waiting-event channel.
 * Returns 1, -2 (lock not ours), -3 (not active).
 */
export const HAND_BACK = `
${INSERT_BY_PRIORITY}
local jobId = ARGV[1]
if redis.call('GET', KEYS[6] .. ':lock') ~= ARGV[2] then return -2 end
if redis.call('LREM', KEYS[1], -1, jobId) == 0 then return -3 end
redis.call('DEL', KEYS[6] .. ':lock')
redis.call('SREM', KEYS[7], jobId)
redis.call('HDEL', KEYS[6], 'processedOn', 'bpNode')
local target = KEYS[2]
if redis.call('EXISTS', KEYS[4]) == 1 then target = KEYS[3] end
local prio = tonumber(redis.call('HGET', KEYS[6], 'priority')) or 0
redis.call('ZADD', KEYS[5], prio, jobId)
insertByPriority(target, KEYS[5], ARGV[3], jobId, prio, true)
redis.call('PUBLISH', ARGV[4], jobId)
return 1
`

/**
 * Cancels a job: removed when waiting/paused/delayed; a cancel request (key with TTL + message) when it runs;
 * nothing when finished. KEYS: `wait`, `paused`, `delayed`, `priority`, job key, `completed`, `failed`, cancel
 * key, dedupe key. ARGV: job id, cancel TTL (ms), events channel, cancel message, removed message.
 * Returns 0 (no job), 1 (removed), 2 (cancel requested), 3 (already finished).
 */
export const CANCEL = `
local jobId = ARGV[1]
if redis.call('EXISTS', KEYS[5]) == 0 then return 0 end
local n = redis.call('LREM', KEYS[1], 0, jobId) + redis.call('LREM', KEYS[2], 0, jobId)
  + redis.call('ZREM', KEYS[3], jobId)
if n > 0 then
  redis.call('ZREM', KEYS[4], jobId)
  redis.call('DEL', KEYS[5], KEYS[5] .. ':logs')
  if redis.call('GET', KEYS[9]) == jobId then redis.call('DEL', KEYS[9]) end
  redis.call('PUBLISH', ARGV[3], ARGV[5])
  return 1
end
if redis.call('ZSCORE', KEYS[6], jobId) or redis.call('ZSCORE', KEYS[7], jobId) then return 3 end
redis.call('SET', KEYS[8], '1', 'PX', ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 2
`

/**
 * The worker's own bookkeeping for several jobs in one round trip (collected over a few milliseconds):
 * - jobs that started here: record the node on each job that still exists and announce it (unless its message is
 *   empty: a job that already ended), and tell whether a cancel was requested for it;
 * - jobs that ended here: drop their de-duplication keys when the job they name is gone or finished (a failure that
 *   will be retried keeps its key).
 * KEYS: `completed`, `failed`, then per started job its job key and cancel key, then the dedupe keys to release.
 * ARGV: node, channel, number of started jobs m, then m messages (one per started job, '' for none), job key prefix.
 * Returns one code per started job: 0 (no such job), 1 (marked), 2 (marked, and a cancel is pending).
 */
export const WORKER_BATCH = `
${IS_LIVE}
local m = tonumber(ARGV[3])
local prefix = ARGV[4 + m]
local marked = {}
for i = 1, m do
  local jobKey = KEYS[1 + 2 * i]
  local r = 0
  if redis.call('EXISTS', jobKey) == 1 then
    redis.call('HSET', jobKey, 'bpNode', ARGV[1])
    if ARGV[3 + i] ~= '' then redis.call('PUBLISH', ARGV[2], ARGV[3 + i]) end
    r = 1
    if redis.call('EXISTS', KEYS[2 + 2 * i]) == 1 then r = 2 end
  end
  marked[i] = r
end
for i = 3 + 2 * m, #KEYS do
  local owner = redis.call('GET', KEYS[i])
  if owner and not isLive(prefix, KEYS[1], KEYS[2], KEYS[i], owner) then
    redis.call('DEL', KEYS[i])
  end
end
return marked
`

/**
 * Deletes de-duplication keys whose job is gone or finished (they only block nothing and take room).
 * KEYS: `completed`, `failed`. ARGV: job key prefix, then dedupe keys. Returns how many were deleted.
 */
export const DEDUPE_SWEEP = `
${IS_LIVE}
local n = 0
for i = 2, #ARGV do
  local owner = redis.call('GET', ARGV[i])
  if owner and not isLive(ARGV[1], KEYS[1], KEYS[2], ARGV[i], owner) then
    redis.call('DEL', ARGV[i])
    n = n + 1
  end
end
return n
`

/**
 * Every fixed script, by the command name it is defined under on the ioredis client. `numberOfKeys: null`: the
 * caller passes the key count first. (`bpAddJob`, built from Bull's own script, is defined once Bull is ready.)
 */
export const SCRIPTS = {
  bpDedupeRelease: { numberOfKeys: 1, lua: DEDUPE_RELEASE },
  bpDedupeSweep: { numberOfKeys: 2, lua: DEDUPE_SWEEP },
  bpSetPriority: { numberOfKeys: 4, lua: SET_PRIORITY },
  bpRetry: { numberOfKeys: 9, lua: RETRY },
  bpHandBack: { numberOfKeys: 7, lua: HAND_BACK },
  bpCancel: { numberOfKeys: 9, lua: CANCEL },
  bpWorkerBatch: { numberOfKeys: null, lua: WORKER_BATCH },
} as const

/** Command name of {@link addJobWithDedupe}'s script. */
export const ADD_JOB_COMMAND = 'bpAddJob'

export type ScriptName = keyof typeof SCRIPTS | typeof ADD_JOB_COMMAND
