package backend

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// decodeStored decodes lease internal data the two ways it reaches a plugin:
// from Vault's storage (numbers as json.Number) and across the plugin gRPC
// boundary (numbers as float64).
func decodeStored(b []byte, useNumber bool) (map[string]interface{}, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if useNumber {
		dec.UseNumber()
	}
	var m map[string]interface{}
	return m, dec.Decode(&m)
}

// FuzzDecodeAPIKeyInternal: whatever a lease holds, decoding never panics,
// and whatever it accepts is safe to put in an upstream URL.
func FuzzDecodeAPIKeyInternal(f *testing.F) {
	f.Add([]byte(`{"service_account_id":"svc_acct_1","project_id":"proj_1"}`), true)
	f.Add([]byte(`{"service_account_id":"svc_acct_1","project_id":"proj_1","api_key_id":"key_1","role":"app","max_ttl":3600}`), false)
	f.Add([]byte(`{"service_account_id":"svc_acct_1","project_id":"proj_1","max_ttl":"3600"}`), true)
	f.Add([]byte(`{"service_account_id":"../x","project_id":"proj_1"}`), true)
	f.Add([]byte(`{"service_account_id":1,"project_id":null,"max_ttl":1e400}`), false)
	f.Add([]byte(`{"max_ttl":-9223372036854775809}`), true)
	f.Fuzz(func(t *testing.T, raw []byte, useNumber bool) {
		m, err := decodeStored(raw, useNumber)
		if err != nil {
			return
		}
		k, err := decodeAPIKeyInternal(m)
		if err != nil {
			return
		}
		if !openaiIDPattern.MatchString(k.ProjectID) || !openaiIDPattern.MatchString(k.ServiceAccountID) {
			t.Fatalf("accepted unsafe ids %q %q", k.ProjectID, k.ServiceAccountID)
		}
	})
}

// Leases as earlier versions stored them (testdata/leases) still revoke:
// the account is deleted at OpenAI.
func TestLease_OlderVersionsStillRevoke(t *testing.T) {
	files, err := filepath.Glob("testdata/leases/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no lease fixtures: %v", err)
	}
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{})
	for _, file := range files {
		for _, useNumber := range []bool{true, false} {
			resp := e.issue("app", nil)
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			raw = []byte(strings.NewReplacer("SERVICE_ACCOUNT_ID", saID(resp), "PROJECT_ID", fakeopenai.ProjectActive).Replace(string(raw)))
			internal, err := decodeStored(raw, useNumber)
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			if err := e.revoke(&logical.Secret{InternalData: internal}); err != nil {
				t.Fatalf("%s (json.Number %t): %v", file, useNumber, err)
			}
			if e.liveAccountIDs()[saID(resp)] {
				t.Fatalf("%s: account survived revoke", file)
			}
			if e.record(saID(resp)) != nil {
				t.Fatalf("%s: record survived revoke", file)
			}
		}
	}
	// And they renew within their recorded lifetime.
	resp := e.issue("app", nil)
	internal, _ := decodeStored([]byte(`{"secret_type":"openai_api_key","service_account_id":"`+saID(resp)+`","project_id":"`+fakeopenai.ProjectActive+`"}`), true)
	s := &logical.Secret{InternalData: internal, LeaseOptions: logical.LeaseOptions{TTL: 60e9}}
	if _, err := e.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.RenewOperation, Storage: e.storage, Secret: s}); err != nil {
		t.Fatalf("renew of a first-version lease: %v", err)
	}
}
