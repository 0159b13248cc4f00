package backend

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// After a failover the new active node's mount is initialized before it
// serves requests: the ledger index loads then, in the background, and the
// first request finds it loaded (no account record read on its path).
func TestInitialize_LoadsTheLedgerBeforeTheFirstRequest(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{})
	const n = 40
	e.issueN("app", n)

	counting := newCountingStorage(e.storage)
	e.storage = counting
	e.restart()
	if err := e.b.Initialize(context.Background(), &logical.InitializationRequest{Storage: counting}); err != nil {
		t.Fatal(err)
	}
	// Waits for the background load (an event, not a speed claim: the
	// deadline only stops a hung test).
	deadline := time.Now().Add(time.Minute)
	for {
		e.b.ledger.mu.RLock()
		loaded := e.b.ledger.loaded
		e.b.ledger.mu.RUnlock()
		if loaded {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Initialize did not load the ledger index")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := counting.count("get"); got < n {
		t.Fatalf("the load read %d records, want at least %d", got, n)
	}
	before := counting.count("get")
	keys := e.mustOK(logical.ListOperation, "keys/", map[string]interface{}{"state": "live"}).Data["keys"].([]string)
	if len(keys) != n {
		t.Fatalf("%d live keys listed after restart, want %d", len(keys), n)
	}
	if got := counting.count("get") - before; got != 0 {
		t.Fatalf("the first request read %d storage entries; the index was loaded at initialize", got)
	}
}

// The parallel read keeps each record at its id's position, answers nil for
// a record deleted since the list and an error only for the record that
// failed; the ledger's load then fails whole (a partial index would
// undercount live keys under the caps).
func TestReadAccountRecords_KeepsOrderAndFailsWhole(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{})
	e.issueN("app", 50)
	ids, err := listAccountIDs(context.Background(), e.storage)
	if err != nil {
		t.Fatal(err)
	}
	ids = append(ids, "svc_acct_deleted_since_the_list")
	recs, errs := readAccountRecords(context.Background(), e.storage, ids)
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids[:len(ids)-1] {
		if recs[i] == nil || recs[i].ServiceAccountID != id {
			t.Fatalf("record %d: want %s, got %+v", i, id, recs[i])
		}
	}
	if recs[len(ids)-1] != nil {
		t.Fatalf("a missing record read as %+v", recs[len(ids)-1])
	}

	failing := newCountingStorage(e.storage)
	failing.failOn = func(op, key string) error {
		if op == "get" && strings.HasSuffix(key, ids[25]) {
			return errors.New("storage unavailable")
		}
		return nil
	}
	recs, errs = readAccountRecords(context.Background(), failing, ids)
	for i := range ids {
		if failed := errs[i] != nil; failed != (i == 25) {
			t.Fatalf("read %d: err = %v; want an error only for the failing record", i, errs[i])
		}
		if i != 25 && i < len(ids)-1 && recs[i] == nil {
			t.Fatalf("record %d lost beside a failed read", i)
		}
	}
	x := newLedgerIndex()
	if err := x.ensure(context.Background(), failing); err == nil {
		t.Fatal("ensure succeeded over a failed read")
	} else if x.loaded {
		t.Fatal(fmt.Sprint("a failed load marked the index loaded: ", err))
	}
}
