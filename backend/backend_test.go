package backend

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

func TestBackend_FactoryReportsVersionAndSealWrap(t *testing.T) {
	e := newTestEnv(t)
	if e.b.RunningVersion != Version {
		t.Fatalf("RunningVersion = %q, want %q", e.b.RunningVersion, Version)
	}
	special := e.b.SpecialPaths()
	if strings.Join(special.SealWrapStorage, ",") != "config,roles/,static-roles/" {
		t.Fatalf("SealWrapStorage = %v", special.SealWrapStorage)
	}
	if strings.Join(special.LocalStorage, ",") != "wal/,accounts/,tidy/" {
		t.Fatalf("LocalStorage = %v", special.LocalStorage)
	}
}

func TestBackend_HelpOnEveryPath(t *testing.T) {
	e := newTestEnv(t)
	for _, p := range e.b.Paths {
		if strings.TrimSpace(p.HelpSynopsis) == "" || strings.TrimSpace(p.HelpDescription) == "" {
			t.Errorf("path %q lacks help text", p.Pattern)
		}
		for name, f := range p.Fields {
			if strings.TrimSpace(f.Description) == "" {
				t.Errorf("field %q of %q lacks a description", name, p.Pattern)
			}
		}
	}
	resp, err := e.do(logical.HelpOperation, "creds/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	if help, _ := resp.Data["help"].(string); !strings.Contains(help, "service account") {
		t.Fatalf("path-help creds/x = %q", help)
	}
}

func TestBackend_WALRollbackMinAgeFromEnv(t *testing.T) {
	t.Setenv(walRollbackMinAgeEnv, "3s")
	if got := walRollbackMinAge(); got != 3*time.Second {
		t.Fatalf("got %s", got)
	}
	t.Setenv(walRollbackMinAgeEnv, "nonsense")
	if got := walRollbackMinAge(); got != defaultWALRollbackMinAge {
		t.Fatalf("bad value should keep the default, got %s", got)
	}
}
