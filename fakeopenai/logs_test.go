package fakeopenai

import (
	"bytes"
	"log"
	"strings"
	"sync"
	"testing"
)

func TestLogsCarryNoKeys(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := log.New(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), "", 0)
	s := New(Options{Logger: logger})
	key := s.AdminKey()
	rawCall(t, s, "POST", "/v1/organization/projects/"+ProjectActive+"/service_accounts", key, `{"name":"a"}`)
	_, _, m := rawCall(t, s, "POST", "/v1/organization/admin_api_keys", key, `{"name":"k"}`)
	rawCall(t, s, "GET", "/v1/organization/projects/"+ProjectActive, "sk-admin-wrong-key", "")
	s.SetFaults(Faults{Rules: []FaultRule{{Kind: Fault500, Count: 1}}})
	rawCall(t, s, "GET", "/v1/organization/projects/"+ProjectActive, key, "")
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if !strings.Contains(out, "op=create_service_account status=200") || !strings.Contains(out, "fault=500") {
		t.Fatalf("log lacks the expected lines:\n%s", out)
	}
	for _, secret := range []string{key, m["value"].(string), "sk-admin-wrong-key", "sk-"} {
		if strings.Contains(out, secret) {
			t.Fatal("a key value reached the log")
		}
	}
}
