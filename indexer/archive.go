package indexer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/index/scorch"

	"mailvault/indexer/catalog"
	"mailvault/indexer/extract"
	"mailvault/indexer/mime"
	"mailvault/indexer/store"
)

// ErrLocked is returned by Open when another process holds the data directory.
var ErrLocked = errors.New("data directory is in use by another mailvault process")

// Options configure an Archive. A nil *Options is equivalent to a zero Options.
type Options struct {
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// ReadOnly opens the archive for searching and verifying: it takes a shared
	// lock (several readers may run together, no writer) and never writes.
	ReadOnly bool
	// Limits bound MIME extraction; nil means the mime package defaults.
	Limits *mime.Limits
	// BatchDocs caps the documents in one index batch (default 1000).
	BatchDocs int
	// BatchBytes caps the text bytes in one index batch (default 32 MiB).
	BatchBytes int
	// DiscardIndex removes the index before opening, so that it is rebuilt
	// from the store and catalog alone (invariant 7): every message is marked
	// unindexed and CatchUp indexes it again. Used by `mailvault reindex`; it
	// works even when the old index is damaged beyond opening.
	DiscardIndex bool
	// Workers is the number of goroutines hashing, parsing and compressing in
	// Ingest (default GOMAXPROCS).
	Workers int
	// Layout is the store layout of a NEW archive: LayoutFiles (default, one
	// file per blob) or LayoutPack (pack segments). An existing archive
	// keeps the layout recorded in it (layout.go).
	Layout string
	// Extract bounds the extraction of attachment text (attachments.go);
	// nil means package extract's defaults.
	Extract *extract.Limits
	// NoExtract leaves attachments' extraction queued instead of doing it
	// (a writable archive opened with it false does the queue's work).
	NoExtract bool
	// StoreMigration opens an archive whose store migration is unfinished,
	// for MigrateStore alone (`mailvault store migrate`).
	StoreMigration bool

	// reindexHook, when set (tests only), is called at each stage of
	// Reindex; the crash tests kill the process there.
	reindexHook func(stage string)
	// extractHook, when set (tests only), is called by the extractor at
	// each stage of a batch ("record": extracted, about to be recorded).
	extractHook func(stage string)
	// flagsHook, when set (tests only), is called by Reconcile and Changes
	// once the catalog has recorded the new flags, before the documents
	// are handed to the writer.
	flagsHook func()
	// migrateBatch, when set (tests only), is how many copies MigrateStore
	// publishes at a time (default 500).
	migrateBatch int
}

// Archive is the store of record, the catalog and the index of one data
// directory, owned by one process. It is safe for concurrent use.
type Archive struct {
	dir  string
	opts Options
	log  *slog.Logger
	lock *os.File
	// stopSweep and sweeping own the sweep of a crashed writer's temporary
	// blobs (writable archives only).
	stopSweep context.CancelFunc
	sweeping  sync.WaitGroup
	// completer fills IMAP SEARCH header columns in the background
	// (imapcolumns.go); Close stops it.
	completer columnCompleter
	store     blobStore    // the store of record (default: package store)
	cat       catalogStore // the catalog (default: package catalog, SQLite)
	// idx is the live index. Searches and the writer use it under
	// idxMu.RLock (withIndex); Reindex and Compact replace it under
	// idxMu.Lock, so nothing ever sees a closed index.
	idxMu sync.RWMutex
	idx   bleve.Index
	// oldMapping is the mapping version of an index a read-only open
	// found made by another mailvault ("" when it is mappingVersion): a
	// read-only archive cannot rebuild it, and mapping 8's sort keys are
	// not in it, so searches sort and count months on the fields it has
	// (sortBy, oldMonthFacet) instead of answering in id order.
	oldMapping string

	// maintMu serialises what rebuilds or replaces the index (CatchUp,
	// Reindex, Compact) with each other and with Close.
	maintMu sync.Mutex

	// dirty is the set of messages the writer indexed while a Reindex
	// builds a new index (nil otherwise); see reindex.go.
	dirtyMu sync.Mutex
	dirty   map[int64]struct{}

	// fsStore is the filesystem store behind store (the default), for what
	// only it has: the sweep of a crashed writer's temporary files. It is
	// nil when the layout is pack (Open repairs a pack store's tail itself).
	fsStore *store.Store
	layout  string // LayoutFiles or LayoutPack (layout.go)

	// interrupted are the keys of blobs published by an ingest that a crash
	// interrupted before its catalog commit (journal.go); pendingDirty says
	// whether ingest.pending names the batch in flight. Both under commitMu
	// after Open.
	interrupted  map[store.Key]bool
	pendingDirty bool

	writer    *writer    // nil when read-only
	extractor *extractor // nil when read-only or NoExtract (attachments.go)

	commitMu   sync.Mutex   // serialises Commit
	lastCommit atomic.Int64 // when the last Commit began (UnixNano): the extractor yields to a busy ingest
	bulk       atomic.Int32 // bulk jobs running (Bulk): the extractor yields to them

	mu        sync.Mutex
	mailboxes map[[2]string]catalog.Mailbox

	views *viewCache // decoded messages for IMAP SEARCH verification
	sigs  *sigFile   // IMAP SEARCH prefilter (ngram.go); nil: searches scan

	// gen counts the catalog writes made through this Archive; the IMAP
	// SEARCH occurrence cache is valid while it is unchanged.
	gen atomic.Int64
	// folderGens: the generation of each folder's last change (folder.go).
	folderGens folderGens
	occMu      sync.Mutex
	occMap     map[occKey]*occEntry
}

// Open opens the archive in dir, creating it when it does not exist (unless
// read-only).
func Open(dir string, opts *Options) (*Archive, error) {
	a := &Archive{dir: dir, mailboxes: map[[2]string]catalog.Mailbox{}, views: newViewCache(viewCacheBytes), occMap: map[occKey]*occEntry{}}
	if opts != nil {
		a.opts = *opts
	}
	a.log = a.opts.Logger
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.opts.BatchDocs <= 0 {
		a.opts.BatchDocs = 1000
	}
	if a.opts.BatchBytes <= 0 {
		a.opts.BatchBytes = 32 << 20
	}
	if a.opts.Workers <= 0 {
		a.opts.Workers = runtime.GOMAXPROCS(0)
	}
	if a.opts.ReadOnly {
		if _, err := os.Stat(filepath.Join(dir, "catalog.db")); err != nil {
			return nil, fmt.Errorf("open archive %s: no archive there (import or harvest mail first, or pass --data)", dir)
		}
	} else if err := store.MkdirSecure(dir); err != nil {
		return nil, fmt.Errorf("open archive: %w", err)
	}
	if err := a.lockDir(); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			a.closeAll()
		}
	}()
	var err error
	if err := a.openStore(); err != nil {
		return nil, err
	}
	var cat *catalog.Catalog
	if a.opts.ReadOnly {
		cat, err = catalog.OpenReadOnly(filepath.Join(dir, "catalog.db"))
	} else {
		cat, err = catalog.Open(filepath.Join(dir, "catalog.db"))
	}
	if err != nil {
		return nil, err
	}
	a.cat = cat
	if err := a.loadJournal(); err != nil {
		return nil, fmt.Errorf("open archive: %w", err)
	}
	indexDir := filepath.Join(dir, indexDirName)
	if a.opts.ReadOnly {
		if _, err := os.Stat(indexDir); errors.Is(err, fs.ErrNotExist) {
			// A writer was killed between Reindex's two renames; until it
			// (or another writer) opens again, the old index is complete.
			if old := filepath.Join(dir, indexOldDirName); dirExists(old) {
				indexDir = old
			}
		}
		if a.idx, err = openIndex(indexDir, true); err != nil {
			return nil, err
		}
		if v, _ := a.idx.GetInternal(mappingKey); string(v) != mappingVersion {
			a.oldMapping = string(v)
			a.log.Warn("index made by another mailvault; searches sort on its numeric fields until a writer rebuilds it", "mapping", string(v), "now", mappingVersion)
		}
	} else {
		if err := recoverIndexDirs(dir); err != nil {
			return nil, fmt.Errorf("open archive: %w", err)
		}
		if a.opts.DiscardIndex {
			// A rebuilt index would no longer show mail the catalog lost
			// (its old documents are the last trace of it): refuse until
			// `mailvault recover` has cataloged it (recover.go).
			n, err := a.countUnreferenced(context.Background())
			if err != nil {
				return nil, fmt.Errorf("open archive: %w", err)
			}
			if n > 0 {
				return nil, unreferencedError("rebuild the index", n)
			}
		}
		rebuild := a.opts.DiscardIndex
		if _, err := os.Stat(indexDir); errors.Is(err, fs.ErrNotExist) {
			rebuild = true
		} else if !rebuild {
			if a.idx, err = openIndex(indexDir, false); err != nil {
				// The index is a cache: one that cannot be opened (a crash
				// mid-write, a disk fault) is rebuilt, not a reason to stop.
				a.log.Warn("index unreadable; rebuilding it from the store and catalog", "err", err)
				rebuild = true
			} else if v, _ := a.idx.GetInternal(mappingKey); string(v) != mappingVersion {
				a.log.Warn("index made by an older mailvault; rebuilding it from the store and catalog", "mapping", string(v), "now", mappingVersion)
				a.idx.Close()
				a.idx = nil
				rebuild = true
			}
		}
		if rebuild {
			// Mark everything unindexed first, so that a crash or error
			// between here and a complete new index cannot leave an index
			// that the catalog believes complete.
			if err := a.cat.ResetIndexed(context.Background()); err != nil {
				return nil, fmt.Errorf("open archive: %w", err)
			}
			if a.idx, err = createIndex(indexDir); err != nil {
				return nil, err
			}
		}
	}
	if a.sigs, err = openSigFile(dir, a.opts.ReadOnly, a.log); err != nil {
		// A cache: without it IMAP SEARCH scans, as before it existed.
		a.log.Warn("IMAP SEARCH prefilter unusable; searches scan every message", "err", err)
	}
	a.warnPermissions()
	if !a.opts.ReadOnly {
		// The sweep runs beside the first work; Close stops it and waits for
		// it before the lock is released.
		sctx, stop := context.WithCancel(context.Background())
		a.stopSweep = stop
		a.sweeping.Add(1)
		go func() {
			defer a.sweeping.Done()
			if a.fsStore != nil {
				a.fsStore.SweepTemps(sctx)
			}
		}()
		a.writer = newWriter(a)
		// No extractor for a store migration: MigrateStore swaps a.store
		// and closes the old one while nothing else reads it (it holds
		// commitMu, which the extractor's reads do not take), so an
		// extraction then would read a closed store and record a healthy
		// blob as unreadable. The queue is durable: the next open does it.
		if !a.opts.NoExtract && !a.opts.StoreMigration {
			a.startExtractor()
		}
		// Disposals a crash interrupted are not finished here: the archive
		// cannot check the holds' queries (dispose.go). The next retention
		// apply finishes them through the service's check; verify names them.
		if ts, err := a.cat.Tombstones(context.Background(), 0, 0, catalog.TombstonePending); err == nil && len(ts) > 0 {
			a.log.Warn("interrupted disposals are pending: the next retention apply finishes them after checking the holds", "pending", len(ts))
		}
	}
	ok = true
	return a, nil
}

var indexConfig = map[string]any{"bolt_timeout": "2s", "scorchMergePlanOptions": mergePlan()}

// openIndex opens the existing Bleve index at path.
func openIndex(path string, readOnly bool) (bleve.Index, error) {
	cfg := maps.Clone(indexConfig)
	cfg["read_only"] = readOnly
	idx, err := bleve.OpenUsing(path, cfg)
	if errors.Is(err, bleve.ErrorIndexPathDoesNotExist) && readOnly {
		return nil, fmt.Errorf("open index %s: it does not exist (run `mailvault reindex`)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("open index %s: %w (the index is a cache: `mailvault reindex` rebuilds it)", path, err)
	}
	return idx, nil
}

// createIndex replaces whatever is at path with a new, empty index. It is
// built beside path and renamed into place once closed: bleve writes the
// mapping after NewUsing returns, and a crash in between must not leave a
// half-made index under the real name.
func createIndex(path string) (bleve.Index, error) {
	m, err := newMapping()
	if err != nil {
		return nil, err
	}
	tmp := path + ".new"
	if err := os.RemoveAll(tmp); err != nil {
		return nil, fmt.Errorf("create index: %w", err)
	}
	idx, err := bleve.NewUsing(tmp, m, bleve.Config.DefaultIndexType, bleve.Config.DefaultKVStore, maps.Clone(indexConfig))
	if err != nil {
		return nil, fmt.Errorf("create index %s: %w", tmp, err)
	}
	if err := idx.SetInternal(mappingKey, []byte(mappingVersion)); err != nil {
		idx.Close()
		return nil, fmt.Errorf("create index %s: %w", tmp, err)
	}
	if err := idx.Close(); err != nil {
		return nil, fmt.Errorf("create index %s: %w", tmp, err)
	}
	if err := secureIndexMeta(tmp); err != nil {
		return nil, fmt.Errorf("create index %s: %w", tmp, err)
	}
	if err := os.RemoveAll(path); err != nil {
		return nil, fmt.Errorf("create index: remove old index: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("create index: %w", err)
	}
	if err := syncDirOf(path); err != nil {
		return nil, fmt.Errorf("create index: %w", err)
	}
	return openIndex(path, false)
}

func dirExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// syncDirOf makes path's entry in its directory durable.
func syncDirOf(path string) error { return store.SyncDir(filepath.Dir(path)) }

// lockDir takes the data directory lock: exclusive for a writer, shared for
// readers. The lock file names the holder's pid for the error message.
func (a *Archive) lockDir() error {
	path := filepath.Join(a.dir, "lock")
	flag := os.O_RDWR | os.O_CREATE
	how := syscall.LOCK_EX
	if a.opts.ReadOnly {
		flag, how = os.O_RDONLY, syscall.LOCK_SH
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			if f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, FileMode); err == nil {
				f.Close()
			}
		}
	}
	f, err := os.OpenFile(path, flag, FileMode)
	if err != nil {
		return fmt.Errorf("lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		who := ""
		if pid, _ := strconv.Atoi(strings.TrimSpace(string(holder))); pid > 0 && syscall.Kill(pid, 0) == nil {
			who = fmt.Sprintf(" (pid %d, or a reader such as search or verify)", pid)
		}
		return fmt.Errorf("open archive %s: %w%s; wait for it to finish or stop it", a.dir, ErrLocked, who)
	}
	if !a.opts.ReadOnly {
		f.Truncate(0)
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	a.lock = f
	return nil
}

// Close flushes pending index work and closes everything. Messages ingested but
// not yet indexed when Close is interrupted are indexed at the next CatchUp.
func (a *Archive) Close() error {
	a.completer.stop()
	a.stopExtractor()
	a.maintMu.Lock() // wait for a running CatchUp, Reindex or Compact
	defer a.maintMu.Unlock()
	var err error
	if a.writer != nil {
		err = a.writer.close()
	}
	return errors.Join(err, a.closeAll())
}

func (a *Archive) closeAll() error {
	if a.stopSweep != nil {
		a.stopSweep()
		a.sweeping.Wait()
	}
	var errs []error
	if a.idx != nil {
		errs = append(errs, a.idx.Close())
	}
	errs = append(errs, a.sigs.close())
	if a.cat != nil {
		errs = append(errs, a.cat.Close())
	}
	if a.store != nil {
		errs = append(errs, a.store.Close())
	}
	if a.lock != nil {
		errs = append(errs, a.lock.Close())
	}
	return errors.Join(errs...)
}

// withIndex runs fn with the live index, which is neither swapped nor closed
// until fn returns. fn must not wait on the writer (Flush) or on commitMu.
func (a *Archive) withIndex(fn func(bleve.Index) error) error {
	a.idxMu.RLock()
	defer a.idxMu.RUnlock()
	return fn(a.idx)
}

// Dir returns the data directory.
func (a *Archive) Dir() string { return a.dir }

// Generation counts the catalog writes made through this Archive (ingest,
// flags, expunges, disposals): an answer computed at one generation is
// still the answer while it is unchanged.
func (a *Archive) Generation() int64 { return a.gen.Load() }

// EnsureMailbox returns the catalog's mailbox (account, name), creating it with
// source and uidvalidity when new.
func (a *Archive) EnsureMailbox(ctx context.Context, account, name, source string, uidvalidity uint32) (catalog.Mailbox, error) {
	if err := checkAccountName(account); err != nil {
		return catalog.Mailbox{}, err
	}
	defer a.touch(account, name)
	defer a.gen.Add(1)
	mb, err := a.cat.EnsureMailbox(ctx, account, name, source, uidvalidity)
	if err != nil {
		return mb, err
	}
	a.mu.Lock()
	a.mailboxes[[2]string{account, name}] = mb
	a.mu.Unlock()
	return mb, nil
}

func (a *Archive) mailbox(ctx context.Context, account, name string) (catalog.Mailbox, error) {
	a.mu.Lock()
	mb, ok := a.mailboxes[[2]string{account, name}]
	a.mu.Unlock()
	if ok {
		return mb, nil
	}
	mb, err := a.cat.Mailbox(ctx, account, name)
	if err != nil {
		return mb, err
	}
	a.mu.Lock()
	a.mailboxes[[2]string{account, name}] = mb
	a.mu.Unlock()
	return mb, nil
}

// Compact merges the index into as few segments as the segment cap allows
// (compactPlan, mapping.go: one segment below maxSegmentDocs). After a bulk
// import this makes the index smaller (fewer term dictionaries) and searches
// faster; the harvester's steady trickle leaves merging to Bleve's
// background merger.
func (a *Archive) Compact(ctx context.Context) error {
	if a.writer == nil {
		return nil
	}
	defer a.Bulk()()
	a.maintMu.Lock()
	defer a.maintMu.Unlock()
	// Ingest waits while the writer is replaced.
	a.commitMu.Lock()
	defer a.commitMu.Unlock()
	if err := a.Flush(ctx); err != nil {
		return err
	}
	adv, err := a.idx.Advanced()
	if err != nil {
		return fmt.Errorf("compact index: %w", err)
	}
	s, ok := adv.(*scorch.Scorch)
	if !ok {
		return nil
	}
	if err := s.ForceMerge(ctx, compactPlan()); err != nil {
		return fmt.Errorf("compact index: %w", err)
	}
	// Scorch deletes the merged-away segment files only on a later persister
	// cycle; reopening the index runs one now, so the disk space is returned
	// before a bulk import reports its size.
	werr := a.writer.close()
	a.idxMu.Lock()
	cerr := a.idx.Close()
	idx, err := openIndex(filepath.Join(a.dir, indexDirName), false)
	if err == nil {
		a.idx = idx
	}
	a.idxMu.Unlock()
	a.writer = newWriter(a)
	if err := errors.Join(werr, cerr, err); err != nil {
		return fmt.Errorf("compact index: %w", err)
	}
	// The reopened index's persister deletes the old files shortly after
	// start; wait for that (bounded), so the import's reported size is real.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		zaps, _ := filepath.Glob(filepath.Join(a.dir, "index", "store", "*.zap"))
		if len(zaps) <= 1 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// OpenEpoch returns the checkpoint of a harvested mailbox in the epoch
// uidvalidity; see catalog.OpenEpoch.
func (a *Archive) OpenEpoch(ctx context.Context, account, accountURL, mailbox string, uidvalidity uint32) (uint32, bool, error) {
	if err := checkAccountName(account); err != nil {
		return 0, false, err
	}
	defer a.touch(account, mailbox)
	defer a.gen.Add(1)
	next, fresh, err := a.cat.OpenEpoch(ctx, account, accountURL, mailbox, uidvalidity)
	if err != nil {
		return 0, false, err
	}
	a.mu.Lock()
	delete(a.mailboxes, [2]string{account, mailbox}) // cached epoch is stale
	a.mu.Unlock()
	return next, fresh, nil
}

// Reconcile records the server's current set of UIDs and their flags for one
// epoch of a harvested mailbox; see catalog.Reconcile. A message whose flags
// changed is indexed again, because its document holds the flags of its
// copies (is:unread, is:flagged): that costs a read and parse of its blob,
// paid once per change a sync finds (marking a thousand messages read
// re-indexes a thousand messages). Until the writer commits them, the
// catalog marks them unindexed, so a crash leaves them to CatchUp.
func (a *Archive) Reconcile(ctx context.Context, account, mailbox string, uidvalidity uint32, flags map[uint32][]string) (expunged, reflagged int, err error) {
	defer a.touch(account, mailbox)
	defer a.gen.Add(1)
	mb, err := a.cat.Mailbox(ctx, account, mailbox)
	if err != nil {
		return 0, 0, err
	}
	// Under commitMu, like Commit: a message's documents reach the writer
	// in the order of the catalog generations they reflect.
	a.commitMu.Lock()
	defer a.commitMu.Unlock()
	expunged, reflagged, touched, err := a.cat.ReconcileFlags(ctx, mb.ID, uidvalidity, flags)
	if err != nil {
		return expunged, reflagged, err
	}
	if err := a.reindexTouched(ctx, touched); err != nil {
		return expunged, reflagged, fmt.Errorf("reconcile: flags recorded, re-indexing left to catch-up: %w", err)
	}
	return expunged, reflagged, nil
}

// EpochModSeq returns the HIGHESTMODSEQ the archive's flags and expunges
// of a harvested mailbox's epoch are current to (0: never recorded) and how
// many of its occurrences are live; see catalog.EpochModSeq.
func (a *Archive) EpochModSeq(ctx context.Context, account, mailbox string, uidvalidity uint32) (uint64, int, error) {
	mb, err := a.cat.Mailbox(ctx, account, mailbox)
	if err != nil {
		return 0, 0, err
	}
	return a.cat.EpochModSeq(ctx, mb.ID, uidvalidity)
}

// Changes records what a partial sync (CONDSTORE, QRESYNC) learned of an
// epoch, with the HIGHESTMODSEQ it brings the epoch to; see
// catalog.Changes. Messages whose flags changed are indexed again, as
// Reconcile does.
func (a *Archive) Changes(ctx context.Context, account, mailbox string, uidvalidity uint32, ch catalog.EpochChanges) (expunged, reflagged int, err error) {
	defer a.touch(account, mailbox)
	defer a.gen.Add(1)
	mb, err := a.cat.Mailbox(ctx, account, mailbox)
	if err != nil {
		return 0, 0, err
	}
	a.commitMu.Lock()
	defer a.commitMu.Unlock()
	expunged, reflagged, touched, err := a.cat.Changes(ctx, mb.ID, uidvalidity, ch)
	if err != nil {
		return expunged, reflagged, err
	}
	if err := a.reindexTouched(ctx, touched); err != nil {
		return expunged, reflagged, fmt.Errorf("changes: flags recorded, re-indexing left to catch-up: %w", err)
	}
	return expunged, reflagged, nil
}

// reindexTouched hands the messages whose flags changed to the writer; the
// caller holds commitMu. The catalog has marked them unindexed, so what
// fails here is left to CatchUp.
//
// The caller's cancellation does not stop it: the catalog has committed
// the new flags, and CatchUp runs only at the next start, so a re-index
// abandoned here would leave this process searching the old flags (is:read
// still finding a message the server marked unread) until a restart. A
// harvester stopped right after a flag change did just that, about one
// run in six of TestDovecotFlagHistory. The work is bounded (the messages
// of one change), the writer's back-pressure still holds, and a closing
// writer still ends it (errWriterClosed).
func (a *Archive) reindexTouched(ctx context.Context, touched []int64) error {
	if h := a.opts.flagsHook; h != nil {
		h()
	}
	if len(touched) == 0 || a.writer == nil {
		return nil
	}
	ctx = context.WithoutCancel(ctx)
	tasks, err := a.cat.IndexTasks(ctx, touched)
	if err != nil {
		return err
	}
	jobs, errs := a.loadJobs(ctx, tasks)
	for i, j := range jobs {
		if errs[i] != nil {
			// A missing or corrupt blob is verify's to report.
			a.log.Error("cannot index message", "sha256", tasks[i].SHA256Hex(), "err", errs[i])
			continue
		}
		if err := a.writer.submit(ctx, j); err != nil {
			a.log.Warn("index queue", "sha256", tasks[i].SHA256Hex(), "err", err)
			break
		}
	}
	return nil
}

// MailboxesGone marks the occurrences of mailboxes no longer on the server
// expunged; see catalog.MailboxesGone.
func (a *Archive) MailboxesGone(ctx context.Context, account string, onServer []string) (map[string]int, error) {
	defer a.touch(account, "")
	defer a.gen.Add(1)
	return a.cat.MailboxesGone(ctx, account, onServer)
}

// Skip records a message a server would not deliver; see catalog.Skip.
func (a *Archive) Skip(ctx context.Context, account, mailbox string, uidvalidity, uid uint32, reason string) error {
	defer a.gen.Add(1)
	return a.cat.Skip(ctx, account, mailbox, uidvalidity, uid, reason)
}
