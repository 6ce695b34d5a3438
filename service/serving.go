package service

import (
	"log/slog"
	"os"
	"runtime/debug"
	"time"

	"mailvault/harvest"
)

// How `mailvault serve` runs its harvesters; the harvest benchmarks use the
// same so that they measure what serve does.
const (
	// ServeFetchBudget is the bytes of fetched mail all harvesters hold at
	// once (harvest.Budget): a thousand accounts catching up wait for each
	// other instead of holding 16 GB.
	ServeFetchBudget = 64 << 20
	// ServeMemoryLimit is the Go heap's soft limit in serve unless
	// GOMEMLIMIT is set (docs/benchmarks.md has the figures).
	ServeMemoryLimit = 256 << 20
)

// LimitServeMemory sets serve's soft heap limit unless GOMEMLIMIT is set.
func LimitServeMemory() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(ServeMemoryLimit)
	}
}

// ServeHarvestOptions are serve's harvester options for n accounts: one
// shared fetch budget, and 10 ms of start jitter per account (at most 5 s),
// so that hundreds of accounts do not all log in to one server at once.
func ServeHarvestOptions(log *slog.Logger, accounts int) *harvest.Options {
	return &harvest.Options{Logger: log, Budget: harvest.NewBudget(ServeFetchBudget),
		StartJitter: min(time.Duration(accounts)*10*time.Millisecond, 5*time.Second)}
}
