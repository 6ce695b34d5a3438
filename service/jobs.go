package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// JobKind is what a job does.
type JobKind string

const (
	JobImport  JobKind = "import"
	JobVerify  JobKind = "verify"
	JobReindex JobKind = "reindex"
)

// JobState is where a job stands.
type JobState string

const (
	JobQueued    JobState = "queued" // waiting for another job of its kind
	JobRunning   JobState = "running"
	JobDone      JobState = "done"
	JobFailed    JobState = "failed"
	JobCancelled JobState = "cancelled"
)

// JobInfo is a job as it is shown: `mailvault jobs`, the status page,
// /api/jobs.
type JobInfo struct {
	ID      string    `json:"id"`
	Kind    JobKind   `json:"kind"`
	State   JobState  `json:"state"`
	By      string    `json:"by"`   // who started it
	What    string    `json:"what"` // e.g. "account alice: /srv/mail/alice"
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended,omitzero"`
	// Progress: items done of total (messages, blobs), rate per second and
	// estimated seconds left while running.
	Done       int     `json:"done"`
	Total      int     `json:"total"`
	Rate       float64 `json:"rate,omitempty"`
	ETASeconds float64 `json:"eta_seconds,omitempty"`
	// Result is the job's outcome (an ImportSummary, an indexer.VerifyReport,
	// a ReindexSummary), set when it ends; Error when it failed.
	Result json.RawMessage `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
}

// job is one job; its fields after the first block are guarded by jobs.mu.
type job struct {
	info        JobInfo
	done, total atomic.Int64
	running     time.Time // when it left the queue, for the rate
	cancel      context.CancelFunc
	finished    chan struct{}
}

// jobs runs and remembers jobs. Jobs of one kind run one at a time, in the
// order they were started (an import queues behind another import: two
// imports into one mailbox must not hand out the same UIDs); jobs of
// different kinds run side by side (verify and reindex work online).
type jobs struct {
	s      *Service
	ctx    context.Context // cancelled when the service stops
	stop   context.CancelFunc
	wg     sync.WaitGroup
	kindMu map[JobKind]*sync.Mutex // guarded by mu; made on first use

	mu  sync.Mutex
	all []*job // oldest first
}

// keepEnded is how many ended jobs are remembered.
const keepEnded = 50

func newJobs(s *Service) *jobs {
	ctx, stop := context.WithCancel(context.Background())
	return &jobs{s: s, ctx: ctx, stop: stop, kindMu: map[JobKind]*sync.Mutex{}}
}

// start runs fn as a job of kind for c. fn reports progress and returns the
// job's result (JSON-encoded into JobInfo.Result). Who may start which job
// is the caller's to check (mayRun, Caller.CanExport).
func (js *jobs) start(c Caller, kind JobKind, what string, fn func(ctx context.Context, progress func(done, total int)) (any, error)) (JobInfo, error) {
	if js.ctx.Err() != nil {
		return JobInfo{}, errorf(ErrBusy, "the archive is shutting down")
	}
	var idb [6]byte
	rand.Read(idb[:])
	// The start is recorded before the job is queued: a job whose start
	// cannot be audited never runs (fail closed).
	if err := js.s.audit(context.Background(), c, ActionJobStart, strings.TrimSpace(string(kind)+" "+hex.EncodeToString(idb[:])+" "+what)); err != nil {
		return JobInfo{}, err
	}
	ctx, cancel := context.WithCancel(js.ctx)
	j := &job{info: JobInfo{ID: hex.EncodeToString(idb[:]), Kind: kind, State: JobQueued, By: c.Name, What: what,
		Started: time.Now()}, cancel: cancel, finished: make(chan struct{})}
	js.mu.Lock()
	js.all = append(js.all, j)
	js.prune()
	info := js.infoLocked(j)
	js.mu.Unlock()
	js.s.log.Info("job queued", "job", j.info.ID, "kind", kind, "by", c.Name, "what", what)
	js.wg.Add(1)
	go func() {
		defer js.wg.Done()
		defer close(j.finished)
		defer cancel()
		js.mu.Lock()
		mu := js.kindMu[kind]
		if mu == nil {
			mu = &sync.Mutex{}
			js.kindMu[kind] = mu
		}
		js.mu.Unlock()
		mu.Lock()
		defer mu.Unlock()
		js.mu.Lock()
		j.info.State, j.running = JobRunning, time.Now()
		js.mu.Unlock()
		res, err := func() (res any, err error) {
			// A bug in a job fails that job, not the daemon with its
			// harvesters.
			defer func() {
				if r := recover(); r != nil {
					js.s.log.Error("job panicked", "job", j.info.ID, "kind", kind, "panic", r, "stack", string(debug.Stack()))
					err = fmt.Errorf("internal error (logged): %v", r)
				}
			}()
			return fn(ctx, func(done, total int) { j.done.Store(int64(done)); j.total.Store(int64(total)) })
		}()
		b, _ := json.Marshal(res)
		js.mu.Lock()
		j.info.Ended = time.Now()
		if res != nil {
			j.info.Result = b
		}
		switch {
		case err == nil:
			j.info.State = JobDone
		case errors.Is(err, context.Canceled):
			j.info.State, j.info.Error = JobCancelled, "cancelled; what was done so far is kept"
		default:
			j.info.State, j.info.Error = JobFailed, err.Error()
		}
		js.mu.Unlock()
		js.s.log.Info("job ended", "job", j.info.ID, "kind", kind, "state", j.info.State, "err", err)
	}()
	return info, nil
}

// prune forgets the oldest ended jobs beyond keepEnded. js.mu is held.
func (js *jobs) prune() {
	ended := 0
	for _, j := range js.all {
		if !j.info.Ended.IsZero() {
			ended++
		}
	}
	for i := 0; ended > keepEnded && i < len(js.all); {
		if !js.all[i].info.Ended.IsZero() {
			js.all = append(js.all[:i], js.all[i+1:]...)
			ended--
			continue
		}
		i++
	}
}

// infoLocked is j's info with its progress. js.mu is held.
func (js *jobs) infoLocked(j *job) JobInfo {
	in := j.info
	in.Done, in.Total = int(j.done.Load()), int(j.total.Load())
	if in.State == JobRunning {
		if el := time.Since(j.running).Seconds(); el > 0 && in.Done > 0 {
			in.Rate = float64(in.Done) / el
			if in.Total >= in.Done {
				in.ETASeconds = math.Round(float64(in.Total-in.Done) / in.Rate)
			}
		}
	}
	return in
}

// list returns the jobs c may see, oldest first: all for admins, auditors
// and the operator; a user sees none (jobs name paths and accounts).
func (js *jobs) list(c Caller) []JobInfo {
	out := []JobInfo{}
	if !c.SeesAll() {
		return out
	}
	js.mu.Lock()
	defer js.mu.Unlock()
	for _, j := range js.all {
		out = append(out, js.infoLocked(j))
	}
	return out
}

func (js *jobs) find(c Caller, id string) (*job, error) {
	if c.SeesAll() {
		js.mu.Lock()
		defer js.mu.Unlock()
		for _, j := range js.all {
			if j.info.ID == id {
				return j, nil
			}
		}
	}
	return nil, errorf(ErrNotFound, "no such job: %s (`mailvault jobs` lists them)", clipID(id))
}

// wait stops every job (they see a cancelled context) and waits for them.
func (js *jobs) wait() {
	js.stop()
	js.wg.Wait()
}

// Jobs lists the jobs c may see, oldest first.
func (s *Service) Jobs(c Caller) []JobInfo { return s.jobs.list(c) }

// Job returns job id.
func (s *Service) Job(c Caller, id string) (JobInfo, error) {
	j, err := s.jobs.find(c, id)
	if err != nil {
		return JobInfo{}, err
	}
	s.jobs.mu.Lock()
	defer s.jobs.mu.Unlock()
	return s.jobs.infoLocked(j), nil
}

// WaitJob waits until job id has ended or ctx is done, and returns its info.
func (s *Service) WaitJob(ctx context.Context, c Caller, id string) (JobInfo, error) {
	j, err := s.jobs.find(c, id)
	if err != nil {
		return JobInfo{}, err
	}
	select {
	case <-j.finished:
	case <-ctx.Done():
	}
	return s.Job(c, id)
}

// mayRun refuses a caller who may not start or cancel imports, verify and
// reindex.
func mayRun(c Caller) error {
	if !c.RunsJobs() {
		return errorf(ErrForbidden, "user %s (%s) may not run jobs: an admin or the operator may", c.Name, c.Role)
	}
	return nil
}

// CancelJob asks job id to stop; what it did so far is kept (an import
// can be run again to resume, a reindex leaves the old index serving). An
// admin or the operator may cancel any job, others their own.
func (s *Service) CancelJob(c Caller, id string) error {
	j, err := s.jobs.find(c, id)
	if err != nil {
		return err
	}
	if !c.RunsJobs() && j.info.By != c.Name {
		return errorf(ErrForbidden, "user %s (%s) may not cancel another's job", c.Name, c.Role)
	}
	j.cancel()
	return s.audit(context.Background(), c, "job-cancel", id)
}

// StartVerify starts a verify job: every blob re-hashed and store, catalog
// and index checked against each other, online (harvest and searches go
// on). Its result is an indexer.VerifyReport.
func (s *Service) StartVerify(c Caller) (JobInfo, error) {
	if err := mayRun(c); err != nil {
		return JobInfo{}, err
	}
	info, err := s.jobs.start(c, JobVerify, "the whole archive", func(ctx context.Context, progress func(int, int)) (any, error) {
		return s.a.Verify(ctx, progress)
	})
	return info, err
}

// ReindexSummary is the result of a reindex.
type ReindexSummary struct {
	Mailboxes   int `json:"mailboxes"`
	Occurrences int `json:"occurrences"`
}

// StartReindex starts a reindex job: a new index is built beside the live
// one from store and catalog and swapped in when complete; searches are
// answered by the old one until then.
func (s *Service) StartReindex(c Caller) (JobInfo, error) {
	if err := mayRun(c); err != nil {
		return JobInfo{}, err
	}
	info, err := s.jobs.start(c, JobReindex, "the whole index", func(ctx context.Context, progress func(int, int)) (any, error) {
		if err := s.a.Reindex(ctx, progress); err != nil {
			return nil, err
		}
		return s.reindexSummary(ctx)
	})
	return info, err
}

func (s *Service) reindexSummary(ctx context.Context) (*ReindexSummary, error) {
	st, err := s.a.Status(ctx)
	if err != nil {
		return nil, err
	}
	sum := &ReindexSummary{Mailboxes: len(st)}
	for _, m := range st {
		sum.Occurrences += m.Occurrences
	}
	return sum, nil
}
