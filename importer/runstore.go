package importer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/etlhub/etlhub/importer/coord"
	"github.com/etlhub/etlhub/importer/load"
	"github.com/etlhub/etlhub/importer/oneroster"
	"github.com/etlhub/etlhub/model"
	"github.com/redis/go-redis/v9"
)

// Runs live in Redis, so that any worker of the group can resume one and any
// process of the group can answer for it:
//
//	etlhub:run:<run_id>      the run's record (JSON), written by its lock holder
//	etlhub:report:<run_id>   its data-quality report and decision (JSON)
//	etlhub:runs:<tenant>     sorted set of the tenant's run ids by start time
//	etlhub:open:<tenant>     the run waiting for files, if any
//	etlhub:active:<tenant>   the run queued or in progress, if any
//	etlhub:queue:<tenant>    stream of queued runs, consumer group "importers"
//	etlhub:detect:<tenant>   lease of the process that watches the inbox
func runKey(id string) string        { return "etlhub:run:" + id }
func reportKey(id string) string     { return "etlhub:report:" + id }
func indexKey(tenant string) string  { return "etlhub:runs:" + tenant }
func openKey(tenant string) string   { return "etlhub:open:" + tenant }
func activeKey(tenant string) string { return "etlhub:active:" + tenant }
func queueKey(tenant string) string  { return "etlhub:queue:" + tenant }
func detectKey(tenant string) string { return "etlhub:detect:" + tenant }
func seqKey(tenant, day string) string {
	return "etlhub:seq:" + tenant + ":" + day
}

const consumerGroup = "importers"

// keepRuns is how many runs per tenant the store keeps.
const keepRuns = 50

// runStore is the runs in Redis (the keys above) for one process of the
// group: records, each tenant's open and active run, its queue (a stream
// with one consumer group), the detector's lease and the reports. Every
// write that races another process is one Lua script.
type runStore struct {
	rdb *redis.Client
	// id is this process: the queue's consumer, the detector lease's holder.
	id string
	// tenants are the group's, whose runs Runs lists.
	tenants []TenantConfig
	// heartbeat is the workers' interval: a running run three heartbeats
	// old is shown stale.
	heartbeat time.Duration
}

var leaseScript = redis.NewScript(`
local v = redis.call("GET", KEYS[1])
if not v then redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2]) return 1 end
if v == ARGV[1] then redis.call("PEXPIRE", KEYS[1], ARGV[2]) return 1 end
return 0`)

// holdDetector takes the tenant's detector lease for this process, or
// keeps it for ttl more, and says whether this process holds it.
func (s *runStore) holdDetector(ctx context.Context, tenant string, ttl time.Duration) (bool, error) {
	held, err := leaseScript.Run(ctx, s.rdb, []string{detectKey(tenant)}, s.id, ttl.Milliseconds()).Int()
	return held == 1, err
}

// active is the tenant's run queued or in progress, "" when none.
func (s *runStore) active(ctx context.Context, tenant string) (string, error) {
	return s.get(ctx, activeKey(tenant))
}

// waiting is the tenant's run waiting for files, "" when none.
func (s *runStore) waiting(ctx context.Context, tenant string) (string, error) {
	return s.get(ctx, openKey(tenant))
}

func (s *runStore) get(ctx context.Context, key string) (string, error) {
	v, err := s.rdb.Get(ctx, key).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	return v, err
}

// saveReport keeps a run's data-quality report and decision for 30 days.
func (s *runStore) saveReport(ctx context.Context, runID string, body []byte) error {
	return s.rdb.Set(ctx, reportKey(runID), body, 30*24*time.Hour).Err()
}

// report is a run's report and decision; redis.Nil when there is none.
func (s *runStore) report(ctx context.Context, runID string) ([]byte, error) {
	return s.rdb.Get(ctx, reportKey(runID)).Bytes()
}

// record is a run as stored: its observation and what a worker needs to
// resume it.
type record struct {
	Obs               model.Observation `json:"obs"`
	UploadCompletedAt *time.Time        `json:"upload_completed_at,omitempty"`
	Files             []string          `json:"files,omitempty"`
	Checkpoint        checkpoint        `json:"checkpoint"`
	Retries           map[string]int    `json:"retries,omitempty"`
	Outages           []Outage          `json:"outages,omitempty"`
	RetryAt           *time.Time        `json:"retry_at,omitempty"`
	Worker            string            `json:"worker,omitempty"`
}

// checkpoint is how far a run has got: each stage, once done, is not done
// again by a later attempt; the load resumes from its marks.
type checkpoint struct {
	Downloaded bool                 `json:"downloaded,omitempty"`
	Sizes      map[string]int64     `json:"sizes,omitempty"`
	Validated  bool                 `json:"validated,omitempty"`
	Decision   *oneroster.Decision  `json:"decision,omitempty"`
	Modes      map[string]load.Mode `json:"modes,omitempty"`
	Load       load.Checkpoint      `json:"load,omitempty"`
	Published  bool                 `json:"published,omitempty"`
	Archived   bool                 `json:"archived,omitempty"`
}

// summary says what is done, for the log of a resumed run.
func (c checkpoint) summary() string {
	var done []string
	for _, s := range []struct {
		ok   bool
		name string
	}{{c.Downloaded, "downloaded"}, {c.Validated, "validated"}, {c.Published, "published"}, {c.Archived, "archived"}} {
		if s.ok {
			done = append(done, s.name)
		}
	}
	if !c.Published && len(c.Load) > 0 {
		rows := 0
		for _, m := range c.Load {
			rows += m.Rows
		}
		done = append(done, fmt.Sprintf("%d rows loaded", rows))
	}
	if len(done) == 0 {
		return "nothing done yet"
	}
	return strings.Join(done, ", ")
}

// Outage is a spell of failed calls to one dependency during a run.
type Outage struct {
	Dependency string     `json:"dependency"`
	From       time.Time  `json:"from"`
	To         *time.Time `json:"to,omitempty"`
	Failures   int        `json:"failures"`
	Error      string     `json:"error"`
}

// RunView is one run in GET /api/v1/runs: the observation schema plus when
// the upload completed and what the run went through.
type RunView struct {
	model.Observation
	UploadCompletedAt *time.Time `json:"upload_completed_at,omitempty"`
	// Retries counts the failed calls, by dependency, that were retried.
	Retries map[string]int `json:"retries,omitempty"`
	Outages []Outage       `json:"outages,omitempty"`
	RetryAt *time.Time     `json:"retry_at,omitempty"`
	Worker  string         `json:"worker,omitempty"`
	// Stale: running, but three heartbeats missed (its worker may be dead;
	// another takes the run over once the lock expires).
	Stale bool `json:"stale,omitempty"`
}

var saveScript = redis.NewScript(`
if ARGV[2] ~= "" and redis.call("GET", KEYS[2]) ~= ARGV[2] then return 0 end
redis.call("SET", KEYS[1], ARGV[1])
return 1`)

// save writes a run's record; with a lock, only while the lock is held (a
// worker that lost its lock cannot overwrite its successor's progress).
func (s *runStore) save(ctx context.Context, rec *record, lock *coord.Lock) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	owner, lk := "", ""
	if lock != nil {
		owner, lk = lock.Owner(), coord.LockKey(lock.Tenant)
	}
	n, err := saveScript.Run(ctx, s.rdb, []string{runKey(rec.Obs.RunID), lk}, b, owner).Int()
	if err != nil {
		return fmt.Errorf("redis save run %s: %w", rec.Obs.RunID, err)
	}
	if n == 0 {
		return coord.ErrLost
	}
	return nil
}

func (s *runStore) loadRecord(ctx context.Context, id string) (*record, error) {
	b, err := s.rdb.Get(ctx, runKey(id)).Bytes()
	if err != nil {
		return nil, fmt.Errorf("redis read run %s: %w", id, err)
	}
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("redis run %s: %w", id, err)
	}
	return &rec, nil
}

var openScript = redis.NewScript(`
if redis.call("EXISTS", KEYS[2]) == 1 then return "" end
local cur = redis.call("GET", KEYS[1])
if cur then return cur end
redis.call("SET", KEYS[3], ARGV[2])
redis.call("ZADD", KEYS[4], ARGV[3], ARGV[1])
redis.call("SET", KEYS[1], ARGV[1])
return ARGV[1]`)

// openRecord returns the tenant's run waiting for files, creating it
// (tenant/job/day#N) when none is open, in one step: two processes that
// poll at once (a detector lease changing hands) open one run, not two.
// It returns nil while a run of the tenant is queued or in progress, and
// created says whether this call opened the run. A lost race leaves a
// gap in the run numbers, never a second run.
func (s *runStore) openRecord(ctx context.Context, t TenantConfig, started time.Time) (rec *record, created bool, err error) {
	day := started.UTC().Format("2006-01-02")
	n, err := s.rdb.Incr(ctx, seqKey(t.Name, day)).Result()
	if err != nil {
		return nil, false, fmt.Errorf("redis run number: %w", err)
	}
	s.rdb.Expire(ctx, seqKey(t.Name, day), 72*time.Hour)
	started = started.UTC()
	rec = &record{Obs: model.Observation{RunStatus: model.RunStatus{
		Source: "importer", Tenant: t.Name, Job: t.Job,
		RunID: fmt.Sprintf("%s/%s/%s#%d", t.Name, t.Job, day, n), State: model.StateWaiting, Stage: model.StageAwaitingFiles,
		StartedAt: &started, UpdatedAt: &started,
	}}}
	b, _ := json.Marshal(rec)
	id, err := openScript.Run(ctx, s.rdb, []string{openKey(t.Name), activeKey(t.Name), runKey(rec.Obs.RunID), indexKey(t.Name)},
		rec.Obs.RunID, b, started.UnixMilli()).Text()
	switch {
	case err != nil:
		return nil, false, fmt.Errorf("redis open run: %w", err)
	case id == "":
		return nil, false, nil
	case id != rec.Obs.RunID:
		rec, err = s.loadRecord(ctx, id)
		return rec, false, err
	}
	s.trim(ctx, t.Name)
	return rec, true, nil
}

var saveOpenScript = redis.NewScript(`
if redis.call("GET", KEYS[2]) ~= ARGV[2] then return 0 end
redis.call("SET", KEYS[1], ARGV[1])
return 1`)

// saveOpen writes the record of a run waiting for files while it is still
// the tenant's open run: a poll that lost a race to another process's
// queueing cannot turn the queued run back into a waiting one.
func (s *runStore) saveOpen(ctx context.Context, rec *record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := saveOpenScript.Run(ctx, s.rdb, []string{runKey(rec.Obs.RunID), openKey(rec.Obs.Tenant)}, b, rec.Obs.RunID).Err(); err != nil {
		return fmt.Errorf("redis save run %s: %w", rec.Obs.RunID, err)
	}
	return nil
}

// trim forgets a tenant's oldest runs beyond keepRuns.
func (s *runStore) trim(ctx context.Context, tenant string) {
	old, err := s.rdb.ZRange(ctx, indexKey(tenant), 0, int64(-keepRuns-1)).Result()
	if err != nil || len(old) == 0 {
		return
	}
	pipe := s.rdb.TxPipeline()
	for _, id := range old {
		pipe.Del(ctx, runKey(id), reportKey(id))
	}
	pipe.ZRem(ctx, indexKey(tenant), toAny(old)...)
	pipe.Exec(ctx)
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, x := range s {
		out[i] = x
	}
	return out
}

var enqueueScript = redis.NewScript(`
if redis.call("EXISTS", KEYS[2]) == 1 or redis.call("GET", KEYS[3]) ~= ARGV[2] then return 0 end
redis.call("SET", KEYS[1], ARGV[1])
redis.call("SET", KEYS[2], ARGV[2])
redis.call("DEL", KEYS[3])
redis.call("XADD", KEYS[4], "*", "run_id", ARGV[2])
return 1`)

// enqueue marks a run queued and adds it to the tenant's stream, in one
// step and only while it is the tenant's open run and nothing of the
// tenant is active: the run is queued once, and the tenant active, or
// neither. queued is false when another process got there first.
func (s *runStore) enqueue(ctx context.Context, rec *record) (queued bool, err error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return false, err
	}
	t := rec.Obs.Tenant
	if err := s.ensureGroup(ctx, t); err != nil {
		return false, err
	}
	n, err := enqueueScript.Run(ctx, s.rdb, []string{runKey(rec.Obs.RunID), activeKey(t), openKey(t), queueKey(t)}, b, rec.Obs.RunID).Int()
	if err != nil {
		return false, fmt.Errorf("redis enqueue %s: %w", rec.Obs.RunID, err)
	}
	return n == 1, nil
}

func (s *runStore) ensureGroup(ctx context.Context, tenant string) error {
	err := s.rdb.XGroupCreateMkStream(ctx, queueKey(tenant), consumerGroup, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("redis queue %s: %w", tenant, err)
	}
	return nil
}

var finishScript = redis.NewScript(`
if redis.call("GET", KEYS[4]) ~= ARGV[3] then return 0 end
redis.call("SET", KEYS[1], ARGV[1], "EX", 2592000)
redis.call("XACK", KEYS[2], "importers", ARGV[2])
redis.call("XDEL", KEYS[2], ARGV[2])
if redis.call("GET", KEYS[3]) == ARGV[4] then redis.call("DEL", KEYS[3]) end
return 1`)

// finish writes a run's terminal record, acknowledges its queue entry and
// frees the tenant, atomically and only while holding the lock.
func (s *runStore) finish(ctx context.Context, rec *record, msgID string, lock *coord.Lock) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	t := rec.Obs.Tenant
	n, err := finishScript.Run(ctx, s.rdb, []string{runKey(rec.Obs.RunID), queueKey(t), activeKey(t), coord.LockKey(t)},
		b, msgID, lock.Owner(), rec.Obs.RunID).Int()
	if err != nil {
		return fmt.Errorf("redis finish %s: %w", rec.Obs.RunID, err)
	}
	if n == 0 {
		return coord.ErrLost
	}
	return nil
}

var dropScript = redis.NewScript(`
redis.call("XACK", KEYS[1], "importers", ARGV[1])
redis.call("XDEL", KEYS[1], ARGV[1])
if redis.call("GET", KEYS[2]) == ARGV[2] then redis.call("DEL", KEYS[2]) end
return 1`)

// drop removes a queue entry whose run is gone, and frees the tenant.
func (s *runStore) drop(ctx context.Context, tenant, msgID, runID string) error {
	return dropScript.Run(ctx, s.rdb, []string{queueKey(tenant), activeKey(tenant)}, msgID, runID).Err()
}

// claim takes the tenant's next queue entry for this worker, which holds the
// tenant's lock: first an entry a dead worker left pending (XAUTOCLAIM;
// while the lock is held, no living worker has one), then a new one.
func (s *runStore) claim(ctx context.Context, tenant string) (msgID, runID string, err error) {
	msgs, _, err := s.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{Stream: queueKey(tenant), Group: consumerGroup,
		Consumer: s.id, MinIdle: 0, Start: "0-0", Count: 1}).Result()
	if err != nil && isNoGroup(err) {
		if err := s.ensureGroup(ctx, tenant); err != nil {
			return "", "", err
		}
		msgs, _, err = nil, "", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("redis xautoclaim %s: %w", tenant, err)
	}
	if len(msgs) == 0 {
		streams, err := s.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: consumerGroup, Consumer: s.id,
			Streams: []string{queueKey(tenant), ">"}, Count: 1, Block: -1}).Result()
		if errors.Is(err, redis.Nil) {
			return "", "", nil
		}
		if err != nil {
			return "", "", fmt.Errorf("redis xreadgroup %s: %w", tenant, err)
		}
		if len(streams) > 0 {
			msgs = streams[0].Messages
		}
	}
	if len(msgs) == 0 {
		return "", "", nil
	}
	id, _ := msgs[0].Values["run_id"].(string)
	return msgs[0].ID, id, nil
}

func isNoGroup(err error) bool { return err != nil && strings.HasPrefix(err.Error(), "NOGROUP") }

// Runs are every tenant's runs in the group as observations, oldest first
// per tenant. It fails when Redis cannot be read.
func (s *runStore) Runs(ctx context.Context) ([]RunView, error) {
	now := time.Now().UTC()
	var out []RunView
	for _, t := range s.tenants {
		ids, err := s.rdb.ZRange(ctx, indexKey(t.Name), 0, -1).Result()
		if err != nil {
			return nil, fmt.Errorf("redis list runs: %w", err)
		}
		if len(ids) == 0 {
			continue
		}
		keys := make([]string, len(ids))
		for i, id := range ids {
			keys[i] = runKey(id)
		}
		vals, err := s.rdb.MGet(ctx, keys...).Result()
		if err != nil {
			return nil, fmt.Errorf("redis read runs: %w", err)
		}
		for _, v := range vals {
			js, ok := v.(string)
			if !ok {
				continue
			}
			var rec record
			if json.Unmarshal([]byte(js), &rec) != nil {
				continue
			}
			out = append(out, s.view(&rec, now))
		}
	}
	return out, nil
}

func (s *runStore) view(rec *record, now time.Time) RunView {
	o := rec.Obs
	o.At = now
	v := RunView{Observation: o, UploadCompletedAt: rec.UploadCompletedAt, Retries: rec.Retries,
		Outages: rec.Outages, RetryAt: rec.RetryAt, Worker: rec.Worker}
	v.Stale = o.State == model.StateRunning && rec.RetryAt == nil && o.UpdatedAt != nil &&
		now.Sub(*o.UpdatedAt) > 3*s.heartbeat
	return v
}
