package harness

import (
	"context"
	"fmt"
	"testing"
)

// LedgerList lists mount/keys/ (the issuance ledger) through v with optional
// filters (role, state, limit, after) and returns the ids and each id's key_info.
func LedgerList(t testing.TB, v *Vault, mount string, filters map[string]string) ([]string, map[string]map[string]any) {
	t.Helper()
	q := map[string][]string{"list": {"true"}}
	for k, val := range filters {
		q[k] = []string{val}
	}
	s, err := v.Client.Logical().ReadWithDataWithContext(context.Background(), mount+"/keys/", q)
	if err != nil {
		t.Fatalf("listing %s/keys/ %v: %v", mount, filters, err)
	}
	if s == nil {
		return nil, nil
	}
	var ids []string
	raw, _ := s.Data["keys"].([]any)
	for _, k := range raw {
		ids = append(ids, fmt.Sprint(k))
	}
	info := map[string]map[string]any{}
	if ki, ok := s.Data["key_info"].(map[string]any); ok {
		for k, val := range ki {
			info[k], _ = val.(map[string]any)
		}
	}
	return ids, info
}
