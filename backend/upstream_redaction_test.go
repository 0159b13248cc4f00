package backend

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// upstreamEcho is a key-shaped string in an upstream error message: OpenAI
// echoes part of a wrong key in its 401 message, and a proxy or a broken
// server in base_url's place may echo the whole Authorization header.
const upstreamEcho = "sk-proj-ECHOEDbyUPSTREAM0123456789abcdef"

// assertLoggedRedacted checks the upstream error did reach the logs (so the
// test is not vacuous) and that its key-shaped part did not.
func assertLoggedRedacted(t *testing.T, logs *syncBuffer, wantLine string, also ...string) {
	t.Helper()
	out := logs.String()
	if !strings.Contains(out, wantLine) {
		t.Fatalf("no log line %q: the upstream error was not logged, the test proves nothing\n%s", wantLine, out)
	}
	if !strings.Contains(out, "Incorrect API key provided") {
		t.Fatalf("the upstream message is not in the logs: the test proves nothing\n%s", out)
	}
	for _, s := range append([]string{out}, also...) {
		if strings.Contains(s, "ECHOEDbyUPSTREAM") {
			t.Fatal("a key-shaped string from an upstream error message reached a log line or report")
		}
	}
}

// The client redacts upstream error text itself: tidy, rotation and
// rollback log upstream errors directly, outside HandleRequest's scrub of
// error responses.
func TestUpstreamErrorRedaction_Tidy(t *testing.T) {
	logs := &syncBuffer{}
	e := newTestEnv(t, withLogs(logs))
	e.configure()
	e.writeRole("app", map[string]interface{}{"max_ttl": "1h"})
	id := saID(e.issue("app", nil))
	e.ageRecord(id, staleBy)

	e.refuseWithEcho(fakeopenai.OpDeleteServiceAccount)
	rep := e.tidy(nil)
	assertLoggedRedacted(t, logs, "tidy: deleting service account failed", fmt.Sprint(rep))

	e.refuseWithEcho(fakeopenai.OpListServiceAccounts)
	rep = e.tidy(nil)
	assertLoggedRedacted(t, logs, "tidy: listing service accounts failed", fmt.Sprint(rep))
}

func TestUpstreamErrorRedaction_Rotation(t *testing.T) {
	logs := &syncBuffer{}
	e := newTestEnv(t, withLogs(logs))
	e.configure()
	e.refuseWithEcho(fakeopenai.OpDeleteAdminKey)
	resp, err := e.rotate()
	if err != nil {
		t.Fatal(err)
	}
	assertLoggedRedacted(t, logs, "old admin key not deleted yet", fmt.Sprint(resp))
}

func TestUpstreamErrorRedaction_Rollback(t *testing.T) {
	logs := &syncBuffer{}
	e := newTestEnv(t, withLogs(logs))
	e.configure()
	e.writeRole("app", map[string]interface{}{})
	// A lost answer leaves a WAL entry for rollback to settle.
	e.fake.SetFaults(fakeopenai.Faults{Rules: []fakeopenai.FaultRule{
		{Ops: []fakeopenai.Op{fakeopenai.OpCreateServiceAccount}, Kind: fakeopenai.FaultLostResponse, Rate: 1},
	}})
	if resp, err := e.do(logical.UpdateOperation, "creds/app", nil); err == nil && (resp == nil || !resp.IsError()) {
		t.Fatal("issue succeeded though every create answer was lost")
	}
	if e.walCount() == 0 {
		t.Fatal("no WAL entry after a lost create: nothing for rollback to do")
	}
	e.refuseWithEcho(fakeopenai.OpListServiceAccounts, fakeopenai.OpDeleteServiceAccount)
	keys, err := e.storage.List(context.Background(), "wal/")
	if err != nil || len(keys) == 0 {
		t.Fatalf("wal entries: %v %v", keys, err)
	}
	// The engine's own rollback error, before HandleRequest's outer scrub:
	// what Vault would log if that scrub were ever bypassed.
	var direct []string
	for _, k := range keys {
		entry, err := framework.GetWAL(context.Background(), e.storage, k)
		if err != nil || entry == nil {
			t.Fatalf("wal %s: %v", k, err)
		}
		if err := e.b.walRollback(context.Background(), &logical.Request{Storage: e.storage}, entry.Kind, entry.Data); err != nil {
			direct = append(direct, err.Error())
		}
	}
	if len(direct) == 0 {
		t.Fatal("rollback succeeded against a refusing upstream: the test proves nothing")
	}
	joined := strings.Join(direct, "; ")
	if !strings.Contains(joined, "Incorrect API key provided") {
		t.Fatalf("rollback error does not carry the upstream message: the test proves nothing: %s", joined)
	}
	if strings.Contains(joined, "ECHOEDbyUPSTREAM") {
		t.Fatal("a key-shaped string from an upstream error message reached the rollback error")
	}
	// And through Vault's path (HandleRequest), nothing reaches logs or the answer.
	resp, err := e.b.HandleRequest(context.Background(), &logical.Request{
		Operation: logical.RollbackOperation, Storage: e.storage, Data: map[string]interface{}{"immediate": true},
	})
	if strings.Contains(fmt.Sprint(resp, err), "ECHOEDbyUPSTREAM") || strings.Contains(logs.String(), "ECHOEDbyUPSTREAM") {
		t.Fatal("a key-shaped string from an upstream error message reached the rollback's answer or a log line")
	}
}
