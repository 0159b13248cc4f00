package backend

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// roleReadCounter counts reads of role entries.
type roleReadCounter struct {
	logical.Storage
	mu        sync.Mutex
	roleReads int
}

func (s *roleReadCounter) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	if strings.HasPrefix(key, roleStoragePrefix) {
		s.mu.Lock()
		s.roleReads++
		s.mu.Unlock()
	}
	return s.Storage.Get(ctx, key)
}

func (s *roleReadCounter) reads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.roleReads
}

func TestRoleCache_IssueReadsTheRoleOnceAndSeesEveryChange(t *testing.T) {
	e := newTestEnv(t)
	cs := &roleReadCounter{Storage: e.storage}
	e.storage = cs
	e.configure()
	e.writeRole("r", map[string]interface{}{"name_template": "first-{{ random 8 }}", "max_ttl": "1h"})

	before := cs.reads()
	for range 3 {
		e.issue("r", nil)
	}
	if n := cs.reads() - before; n != 1 {
		t.Fatalf("3 issues read the role %d times from storage, want 1", n)
	}

	// A role write on this node takes effect on the next issue.
	e.fake.AddProject("proj_second", "Second", "active")
	e.writeRole("r", map[string]interface{}{"project_id": "proj_second", "name_template": "second-{{ random 8 }}"})
	resp := e.issue("r", nil)
	if got := resp.Data["project_id"]; got != "proj_second" {
		t.Fatalf("issue after role update used project %v", got)
	}
	if name, _ := resp.Data["service_account_name"].(string); !strings.HasPrefix(name, "second-") {
		t.Fatalf("issue after role update used an old template: %q", name)
	}

	// Another node's write reaches this one as storage change plus Invalidate.
	entry, err := logical.StorageEntryJSON(roleStoragePrefix+"r", &roleEntry{ProjectID: fakeopenai.ProjectActive, NameTemplate: "third-{{ random 8 }}"})
	if err != nil {
		t.Fatal(err)
	}
	if err := cs.Put(context.Background(), entry); err != nil {
		t.Fatal(err)
	}
	e.b.invalidate(context.Background(), roleStoragePrefix+"r")
	resp = e.issue("r", nil)
	if name, _ := resp.Data["service_account_name"].(string); !strings.HasPrefix(name, "third-") || resp.Data["project_id"] != fakeopenai.ProjectActive {
		t.Fatalf("issue after Invalidate used the cached role: %q in %v", name, resp.Data["project_id"])
	}

	// A deleted role is gone for the next issue.
	e.mustOK(logical.DeleteOperation, "roles/r", nil)
	e.mustBadRequest(logical.ReadOperation, "creds/r", nil, "unknown role")
}

// blockingStorage returns, for the first role read, the entry as it was when
// the read began, after the test has let it proceed.
type blockingStorage struct {
	logical.Storage
	once    sync.Once
	started chan struct{}
	proceed chan struct{}
}

func (s *blockingStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	entry, err := s.Storage.Get(ctx, key)
	if strings.HasPrefix(key, roleStoragePrefix) {
		s.once.Do(func() {
			close(s.started)
			<-s.proceed
		})
	}
	return entry, err
}

// A read that began before a role write must not leave the old role cached.
func TestRoleCache_ReadRacingARoleWriteIsNotCached(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("r", map[string]interface{}{"name_template": "old-{{ random 8 }}"})

	bs := &blockingStorage{Storage: e.storage, started: make(chan struct{}), proceed: make(chan struct{})}
	done := make(chan *roleEntry)
	go func() {
		role, _, _, err := e.b.issueRole(context.Background(), bs, "r")
		if err != nil {
			t.Error(err)
		}
		done <- role
	}()
	<-bs.started
	e.writeRole("r", map[string]interface{}{"name_template": "new-{{ random 8 }}"})
	close(bs.proceed)
	if old := <-done; old == nil || !strings.HasPrefix(old.NameTemplate, "old-") {
		t.Fatalf("the racing read returned %+v, want the role as it was when the read began", old)
	}

	role, _, _, err := e.b.issueRole(context.Background(), e.storage, "r")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(role.NameTemplate, "new-") {
		t.Fatalf("after the write the cache holds %q", role.NameTemplate)
	}
}
