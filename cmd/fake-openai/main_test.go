package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

func createAccount(t *testing.T, base, key, name string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/organization/projects/"+fakeopenai.ProjectActive+"/service_accounts", strings.NewReader(`{"name":"`+name+`","expires_in_seconds":3600}`))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != 200 {
		t.Fatalf("create: %d %v", resp.StatusCode, err)
	}
	return m["id"].(string)
}

func TestAccountsCommand(t *testing.T) {
	fake := fakeopenai.New(fakeopenai.Options{})
	srv := httptest.NewServer(fake)
	defer srv.Close()
	fake.FailOnViolations(t)
	id := createAccount(t, srv.URL+"/v1", fake.AdminKey(), "lease-a")

	for _, url := range []string{srv.URL + "/v1", srv.URL + "/v1/", srv.URL} {
		var out bytes.Buffer
		if err := accountsCmd([]string{"-url", url}, &out); err != nil {
			t.Fatal(err)
		}
		text := out.String()
		if !strings.Contains(text, "PROJECT") || !strings.Contains(text, id) || !strings.Contains(text, "lease-a") ||
			!strings.Contains(text, fakeopenai.ProjectActive) || !strings.Contains(text, "1 live account(s)") {
			t.Fatalf("table for %s:\n%s", url, text)
		}
		if strings.Contains(text, "never") {
			t.Fatalf("key expiry not shown:\n%s", text)
		}
	}
	var out bytes.Buffer
	if err := accountsCmd([]string{"-url", srv.URL + "/v1", "-json"}, &out); err != nil {
		t.Fatal(err)
	}
	var accts []fakeopenai.Account
	if err := json.Unmarshal(out.Bytes(), &accts); err != nil || len(accts) != 1 || accts[0].ID != id {
		t.Fatalf("json: %s", out.String())
	}
	if err := accountsCmd(nil, &out); err == nil {
		t.Fatal("missing -url accepted")
	}
	if err := accountsCmd([]string{"-url", srv.URL + "/nope/v1"}, &out); err == nil {
		t.Fatal("a non-fake URL was accepted")
	}
}

func TestServe(t *testing.T) {
	const key = "sk-admin-from-env-test-value"
	t.Setenv("FAKE_OPENAI_ADMIN_KEY", key)
	addrFile := filepath.Join(t.TempDir(), "addr")
	ctx, cancel := context.WithCancel(context.Background())
	var stderr bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- serve(ctx, []string{"-addr-file", addrFile, "-latency", "1ms", "-v"}, &stderr) }()

	var base string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if b, err := os.ReadFile(addrFile); err == nil {
			base = strings.TrimSpace(string(b))
			break
		}
	}
	if !strings.HasPrefix(base, "http://127.0.0.1:") || !strings.HasSuffix(base, "/v1") {
		cancel()
		t.Fatalf("addr file holds %q", base)
	}
	id := createAccount(t, base, key, "via-binary")
	// The binary checks the contract too, and says so on stderr without -v.
	req, _ := http.NewRequest("GET", base+"/organization/projects/"+fakeopenai.ProjectActive+"/service_accounts?page_size=1", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a request outside the contract: %d, want 400", resp.StatusCode)
	}
	resp, err = http.Get(strings.TrimSuffix(base, "/v1") + "/_fake/violations")
	if err != nil {
		t.Fatal(err)
	}
	var violations []string
	if err := json.NewDecoder(resp.Body).Decode(&violations); err != nil || len(violations) != 1 || !strings.Contains(violations[0], "page_size") {
		t.Fatalf("/_fake/violations = %q, %v", violations, err)
	}
	_ = resp.Body.Close()
	var out bytes.Buffer
	if err := accountsCmd([]string{"-url", base}, &out); err != nil || !strings.Contains(out.String(), id) {
		t.Fatalf("accounts: %v\n%s", err, out.String())
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no graceful shutdown")
	}
	logs := stderr.String()
	if !strings.Contains(logs, "admin key id key_") || !strings.Contains(logs, "op=create_service_account status=200") ||
		!strings.Contains(logs, "CONTRACT VIOLATION") {
		t.Fatalf("logs:\n%s", logs)
	}
	if strings.Contains(logs, "sk-") {
		t.Fatal("the binary printed a key value")
	}
}

func TestKeysCommand(t *testing.T) {
	fake := fakeopenai.New(fakeopenai.Options{})
	srv := httptest.NewServer(fake)
	defer srv.Close()
	fake.FailOnViolations(t)
	id := createAccount(t, srv.URL+"/v1", fake.AdminKey(), "lease-k")
	keyIDs := fake.AccountKeyIDs(fakeopenai.ProjectActive, id)
	if len(keyIDs) != 1 {
		t.Fatalf("key ids = %q", keyIDs)
	}
	var out bytes.Buffer
	if err := keysCmd([]string{"-url", srv.URL + "/v1"}, &out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	if !strings.Contains(text, "SCOPES") || !strings.Contains(text, keyIDs[0]) || !strings.Contains(text, id) ||
		!strings.Contains(text, " all ") || !strings.Contains(text, "1 live key(s)") || strings.Contains(text, "sk-") {
		t.Fatalf("table:\n%s", text)
	}
	out.Reset()
	if err := keysCmd([]string{"-url", srv.URL, "-json"}, &out); err != nil {
		t.Fatal(err)
	}
	var keys []fakeopenai.KeyInfo
	if err := json.Unmarshal(out.Bytes(), &keys); err != nil || len(keys) != 1 || keys[0].ID != keyIDs[0] {
		t.Fatalf("json: %s", out.String())
	}
	if err := keysCmd(nil, &out); err == nil {
		t.Fatal("missing -url accepted")
	}
}
