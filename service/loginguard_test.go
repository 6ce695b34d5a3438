package service

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var guardT0 = time.Date(2024, 3, 4, 10, 0, 0, 0, time.UTC)

// TestLoginGuardLockout: LoginFailures failures lock the pair, for a
// window that doubles with each failure after it, up to loginMaxLock; the
// same name from another address, and another name from the same address,
// are not locked; a success forgets the failures.
func TestLoginGuardLockout(t *testing.T) {
	g := NewLoginGuard()
	now := guardT0
	for i := range LoginFailures - 1 {
		if ok, why, _ := g.Allow("192.0.2.1", "root", now); !ok {
			t.Fatalf("Allow after %d failures = false (%s), want true", i, why)
		}
		g.Failed("192.0.2.1", "root", now)
	}
	// Each further failure (made once the previous lock is over) locks for
	// twice as long, at most loginMaxLock.
	for i, want := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, loginMaxLock, loginMaxLock} {
		g.Failed("192.0.2.1", "root", now)
		ok, why, retry := g.Allow("192.0.2.1", "root", now)
		if ok || retry != want || why != "too many failed logins for this name from this address" {
			t.Fatalf("failure %d: Allow = %v, %q, %v; want false, the pair's lock, %v", LoginFailures+i, ok, why, retry, want)
		}
		if ok, _, _ := g.Allow("192.0.2.1", "root", now.Add(want-time.Second)); ok {
			t.Fatalf("failure %d: allowed a second before the %v lock ends", LoginFailures+i, want)
		}
		if ok, _, _ := g.Allow("192.0.2.2", "root", now); !ok {
			t.Fatalf("failure %d: the same name from another address is locked", LoginFailures+i)
		}
		if ok, _, _ := g.Allow("192.0.2.1", "ann", now); !ok {
			t.Fatalf("failure %d: another name from the same address is locked", LoginFailures+i)
		}
		now = now.Add(want)
	}
	if ok, why, _ := g.Allow("192.0.2.1", "root", now); !ok {
		t.Fatalf("Allow when the lock is over = false (%s), want true", why)
	}
	g.Succeeded("192.0.2.1", "root")
	g.Failed("192.0.2.1", "root", now)
	if ok, why, _ := g.Allow("192.0.2.1", "root", now); !ok {
		t.Errorf("one failure after a success: Allow = false (%s); the success should have forgotten the rest", why)
	}
}

// TestLoginGuardCheckBudget: an address gets LoginBurst checks at once,
// then one per loginRate, whatever names it tries; other addresses keep
// their own budgets.
func TestLoginGuardCheckBudget(t *testing.T) {
	g := NewLoginGuard()
	for i := range LoginBurst {
		if ok, why, _ := g.Allow("192.0.2.1", fmt.Sprintf("user%d", i), guardT0); !ok {
			t.Fatalf("check %d of the burst refused: %s", i+1, why)
		}
	}
	ok, why, retry := g.Allow("192.0.2.1", "another", guardT0)
	if ok || why != "too many login attempts from this address" || retry != loginRate {
		t.Fatalf("check past the burst: Allow = %v, %q, %v; want false, the address's budget, %v", ok, why, retry, loginRate)
	}
	if ok, _, _ := g.Allow("192.0.2.2", "user0", guardT0); !ok {
		t.Errorf("another address refused by the first one's budget")
	}
	later := guardT0.Add(loginRate)
	if ok, why, _ := g.Allow("192.0.2.1", "another", later); !ok {
		t.Errorf("after %v: Allow = false (%s), want one more check", loginRate, why)
	}
	if ok, _, _ := g.Allow("192.0.2.1", "another", later); ok {
		t.Errorf("after %v: two more checks allowed, want one", loginRate)
	}
}

// TestLoginGuardAudit: AuditBurst rows at once per address; the refused
// ones are counted and handed to the next row that is allowed.
func TestLoginGuardAudit(t *testing.T) {
	g := NewLoginGuard()
	for i := range AuditBurst {
		if ok, n := g.AuditAllowed("192.0.2.1", guardT0); !ok || n != 0 {
			t.Fatalf("row %d: AuditAllowed = %v, %d; want true, 0", i+1, ok, n)
		}
	}
	for range 3 {
		if ok, n := g.AuditAllowed("192.0.2.1", guardT0); ok || n != 0 {
			t.Fatalf("row past the burst: AuditAllowed = %v, %d; want false, 0", ok, n)
		}
	}
	if ok, n := g.AuditAllowed("192.0.2.2", guardT0); !ok || n != 0 {
		t.Errorf("another address: AuditAllowed = %v, %d; want true, 0", ok, n)
	}
	if ok, n := g.AuditAllowed("192.0.2.1", guardT0.Add(auditRate)); !ok || n != 3 {
		t.Errorf("after %v: AuditAllowed = %v, %d; want true, 3 suppressed", auditRate, ok, n)
	}
	if ok, n := g.AuditAllowed("192.0.2.1", guardT0.Add(2*auditRate)); !ok || n != 0 {
		t.Errorf("the row after: AuditAllowed = %v, %d; want true, 0 (the count was handed over once)", ok, n)
	}
}

// TestLoginGuardBounded: a flood of distinct addresses and names leaves at
// most GuardMax entries in each table.
func TestLoginGuardBounded(t *testing.T) {
	g := NewLoginGuard()
	for i := range 3 * GuardMax {
		addr := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
		g.Allow(addr, "root", guardT0)
		g.Failed(addr, fmt.Sprintf("user%d", i), guardT0)
		g.AuditAllowed(addr, guardT0)
	}
	if p, c, a := len(g.pairs), len(g.checks), len(g.audits); p > GuardMax || c > GuardMax || a > GuardMax {
		t.Errorf("after 3×%d addresses: %d pairs, %d check buckets, %d audit buckets; want at most %d each", GuardMax, p, c, a, GuardMax)
	}
	if n := g.Size(); n > 3*GuardMax {
		t.Errorf("after 3×%d addresses: Size = %d, want at most %d", GuardMax, n, 3*GuardMax)
	}
}

// TestLoginGuardEvictsIdleFirst: when the table of pairs is full, the
// entries idle past guardTTL go before an active one, so a lock in force
// is not forgotten just because old entries filled the table. (Under a
// flood of active entries eviction is at random and a lock can be lost:
// the price of bounded memory, documented on LoginGuard.)
func TestLoginGuardEvictsIdleFirst(t *testing.T) {
	g := NewLoginGuard()
	for i := range GuardMax - 1 {
		g.Failed(fmt.Sprintf("10.0.%d.%d", i>>8&255, i&255), "x", guardT0)
	}
	now := guardT0.Add(guardTTL + time.Minute)
	for range LoginFailures {
		g.Failed("192.0.2.1", "root", now)
	}
	if len(g.pairs) != GuardMax {
		t.Fatalf("%d pairs before the flood, want a full table of %d", len(g.pairs), GuardMax)
	}
	for i := range 100 {
		g.Failed(fmt.Sprintf("198.51.100.%d", i), "x", now)
	}
	if ok, _, _ := g.Allow("192.0.2.1", "root", now); ok {
		t.Errorf("a pair locked while the table was full of idle entries was evicted; the idle ones should have gone")
	}
	if n := len(g.pairs); n != 101 {
		t.Errorf("%d pairs after the eviction, want 101 (the lock and the 100 new ones)", n)
	}
}

// TestLoginGuardCheckCap: at most bcryptSlots checks run at once, and a
// check that panics frees its slot.
func TestLoginGuardCheckCap(t *testing.T) {
	g := NewLoginGuard()
	var running, most atomic.Int32
	var wg sync.WaitGroup
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.Check(func() {
				n := running.Add(1)
				for {
					m := most.Load()
					if n <= m || most.CompareAndSwap(m, n) {
						break
					}
				}
				time.Sleep(20 * time.Millisecond)
				running.Add(-1)
			})
		}()
	}
	wg.Wait()
	if m := most.Load(); m != bcryptSlots {
		t.Errorf("12 concurrent checks: at most %d ran at once, want %d", m, bcryptSlots)
	}
	// More panicking checks than slots, then one more: if a panic kept its
	// slot, this blocks, and the timeout fails the test (not go test's).
	done := make(chan struct{})
	go func() {
		for range bcryptSlots + 1 {
			func() {
				defer func() { recover() }()
				g.Check(func() { panic("check failed") })
			}()
		}
		g.Check(func() {})
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Check blocks after checks that panicked: their slots were not freed")
	}
}
